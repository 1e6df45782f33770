//! Commands built at their final size: an argument is copied into the command's buffer once,
//! not again at every growth of it.

/// The command `name` with room for `args` more arguments of `bytes` bytes in all.
pub(crate) fn sized_cmd(name: &str, args: usize, bytes: usize) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(args + 1, name.len() + bytes);
    cmd.arg(name);
    cmd
}

/// The command `name` with `args`.
pub(crate) fn with_args(name: &str, args: &[&str]) -> redis::Cmd {
    let bytes = args.iter().map(|arg| arg.len()).sum();
    let mut cmd = sized_cmd(name, args.len(), bytes);
    for arg in args {
        cmd.arg(*arg);
    }
    cmd
}
