//! Reading a file a piece at a time on the blocking pool (a read of a file blocks its
//! thread): for bodies served from their files and bodies copied from file to file. A leaf.

use std::fs::File;

use bytes::BytesMut;

/// The piece of `file` at `offset`, up to `want` bytes, read on the blocking pool: the file
/// back, and the bytes read (none at its end). An interrupted read is tried again. After an
/// error the file is gone: no caller reads on after one.
///
/// Read at its offset, not from the file's position: every clone of a descriptor shares
/// that position, and one body served from its file twice at once (a stale answer while its
/// revalidation serves the same entry) read each other's bytes.
pub(crate) async fn read_piece(
    file: File,
    offset: u64,
    want: usize,
) -> std::io::Result<(File, BytesMut)> {
    let read = tokio::task::spawn_blocking(move || {
        let mut piece = BytesMut::zeroed(want);
        let n = loop {
            match read_at(&file, &mut piece, offset) {
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

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

/// Moves the descriptor's position, which no reader here relies on: each passes its offset.
#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Two readers of one file (clones of one descriptor, as two bodies served from one entry
    /// are) each read their own bytes, in any order: they shared one position, and the
    /// second read of the first reader went on where the other had stopped.
    #[tokio::test]
    async fn readers_of_one_file_keep_their_own_place() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"0123456789").unwrap();
        let other = file.try_clone().unwrap();
        let (file, first) = read_piece(file, 0, 4).await.unwrap();
        let (_, from_start) = read_piece(other, 0, 6).await.unwrap();
        let (_, next) = read_piece(file, 4, 4).await.unwrap();
        assert_eq!(&first[..], b"0123");
        assert_eq!(&from_start[..], b"012345");
        assert_eq!(&next[..], b"4567");
    }
}
