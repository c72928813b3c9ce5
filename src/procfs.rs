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
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; EXPECTED_MAX];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
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
