//! Reading the small text files the kernel generates (/proc, cgroupfs).
//!
//! They report a size of 0, so `std::fs::read_to_string` first asks for
//! their size (statx), then reads 32 bytes and grows from there: five to
//! ten syscalls for a 2 KiB mountinfo, each of which makes a seq_file
//! render the table again from its start. One buffer that holds the whole
//! file makes it an open, a read and the read that sees EOF.

use std::io::{self, Read};
use std::path::Path;

/// Larger than any mountinfo, cgroup or stat file berth reads on a normal
/// host; a bigger file still reads correctly, in more calls.
const EXPECTED_MAX: usize = 16 * 1024;

/// The whole file as text. (Not `File::read_to_string`, which asks the
/// file for its size first.)
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    // Read's default read_to_end: no size query, and it reads into the
    // vector's spare capacity without zeroing it first.
    struct NoSizeHint(std::fs::File);
    impl Read for NoSizeHint {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }
    let mut buf = Vec::with_capacity(EXPECTED_MAX);
    NoSizeHint(std::fs::File::open(path)?).read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_whole_kernel_file() {
        let text = super::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(
            text,
            std::fs::read_to_string("/proc/self/mountinfo").unwrap()
        );
    }
}
