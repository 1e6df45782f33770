//! Reading a file a piece at a time on the blocking pool (a read of a file blocks its
//! thread): for bodies served from their files and bodies copied from file to file. A leaf.

use std::fs::File;
use std::io::Read;

use bytes::BytesMut;

/// The next piece of `file`, up to `want` bytes, read on the blocking pool: the file back,
/// and the bytes read (none at its end). An interrupted read is tried again. After an error
/// the file is gone: no caller reads on after one.
pub(crate) async fn read_piece(file: File, want: usize) -> std::io::Result<(File, BytesMut)> {
    let read = tokio::task::spawn_blocking(move || {
        let mut file = file;
        let mut piece = BytesMut::zeroed(want);
        let n = loop {
            match file.read(&mut piece) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                read => break read?,
            }
        };
        piece.truncate(n);
        Ok((file, piece))
    })
    .await;
    // The pool gone: the runtime is shutting down.
    read.unwrap_or_else(|gone| Err(std::io::Error::other(gone)))
}
