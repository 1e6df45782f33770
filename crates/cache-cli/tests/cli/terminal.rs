//! On a terminal the long operations draw progress bars (off one, they stay quiet: the
//! scenarios of `every_command` check standard error is empty there).

use std::process::Command;

use crate::stores::{Kind, TestStore};
use crate::support::{Origin, arg, seed};

#[tokio::test]
async fn a_terminal_gets_progress_bars() {
    // `script` (util-linux, in every Debian) runs the command on a pseudo-terminal.
    test_support::require_binary("script");
    let store = TestStore::new(Kind::Sqlite);
    seed(&store.open().await, &Origin::start().await).await;
    let out = store.dir.path().join("exported");
    let command = format!(
        "'{}' --store '{}' export '{}'",
        env!("CARGO_BIN_EXE_reqwest-caching"),
        store.name,
        arg(&out)
    );
    let run = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .output()
    })
    .await
    .unwrap()
    .expect("run script");
    let seen = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{seen}");
    assert!(seen.contains("copying ["), "a bar was drawn: {seen:?}");
    assert!(seen.contains("copied 3 entries"), "{seen:?}");
}
