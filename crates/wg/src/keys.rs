//! `genkey`, `genpsk`, `pubkey`, and reading key files for `set`, as wg does them.

use std::io::Read;

use ferrotun_proto::keys::{PresharedKey, PrivateKey, KEY_LEN};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroize;

use super::io::Io;
use ferrotun_uapi::client::errno_message;

/// Length of a base64 key: 44 characters, the last one `=`.
const B64_LEN: usize = 44;
/// More than any key file with generous trailing whitespace.
const MAX_KEYFILE: u64 = 64 * 1024;

/// `genkey` (clamped private key) and `genpsk` (32 random bytes).
pub fn genkey(io: &mut Io, args: &[String]) -> i32 {
    let cmd = args.first().map_or("genkey", String::as_str);
    if args.len() != 1 {
        let msg = format!("Usage: {} {cmd}\n", io.prog);
        io.err(&msg);
        return 1;
    }
    if io.env.stdout_world_accessible_file {
        io.err("Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.\n");
    }
    let mut bytes = [0u8; KEY_LEN];
    if let Err(e) = OsRng.try_fill_bytes(&mut bytes) {
        let msg = format!("getrandom: {e}\n");
        io.err(&msg);
        return 1;
    }
    let text = if cmd == "genkey" {
        PrivateKey::from_bytes(bytes).to_base64()
    } else {
        PresharedKey::from_bytes(bytes).to_base64()
    };
    bytes.zeroize();
    if io.out(&format!("{text}\n")) {
        0
    } else {
        1
    }
}

/// `pubkey`: a base64 private key on stdin (trailing whitespace allowed), its public key out.
pub fn pubkey(io: &mut Io, args: &[String]) -> i32 {
    if args.len() != 1 {
        let msg = format!(
            "Usage: {} {}\n",
            io.prog,
            args.first().map_or("pubkey", |s| s)
        );
        io.err(&msg);
        return 1;
    }
    let bad_key = |io: &mut Io| {
        let msg = format!("{}: Key is not the correct length or format\n", io.prog);
        io.err(&msg);
        1
    };
    let mut key = [0u8; B64_LEN];
    if read_full(io.stdin, &mut key) != B64_LEN {
        return bad_key(io);
    }
    // wg skips NULs and whitespace after the key, and refuses anything else.
    let mut rest = [0u8; 512];
    loop {
        match io.stdin.read(&mut rest) {
            Ok(0) => break,
            Ok(n) => {
                let trailing = rest.get(..n).unwrap_or(&[]);
                if trailing.iter().any(|&b| b != 0 && !is_c_space(b)) {
                    let msg = format!("{}: Trailing characters found after key\n", io.prog);
                    io.err(&msg);
                    return 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let parsed = std::str::from_utf8(&key)
        .ok()
        .and_then(|text| PrivateKey::from_base64(text).ok());
    key.zeroize();
    let Some(private) = parsed else {
        return bad_key(io);
    };
    if io.out(&format!("{}\n", private.public_key())) {
        0
    } else {
        1
    }
}

/// Reads until `buf` is full or input ends; returns how much was read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while let Some(space) = buf.get_mut(filled..).filter(|s| !s.is_empty()) {
        match r.read(space) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    filled
}

/// C's `isspace` in the "C" locale.
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A key file as `wg set … private-key FILE` reads it: an empty file (or `/dev/null`) means
/// "remove the key"; otherwise 44 base64 characters and nothing but whitespace after them.
/// `/dev/stdin` reads the command's standard input. Returns the raw base64 text, or `None`
/// for the empty file.
pub fn read_keyfile(io: &mut Io, path: &str) -> Result<Option<String>, String> {
    let mut data = Vec::new();
    // Bounded, so a path like /dev/zero ends in an error rather than exhausting memory.
    let read = if path == "/dev/stdin" {
        io.stdin.take(MAX_KEYFILE).read_to_end(&mut data)
    } else {
        std::fs::File::open(path)
            .map_err(|e| format!("fopen: {}", io_text(&e)))?
            .take(MAX_KEYFILE)
            .read_to_end(&mut data)
    };
    if let Err(e) = read {
        data.zeroize();
        return Err(format!("fread: {}", io_text(&e)));
    }
    let result = split_keyfile(&data);
    data.zeroize();
    result
}

fn split_keyfile(data: &[u8]) -> Result<Option<String>, String> {
    if data.is_empty() {
        return Ok(None);
    }
    let (Some(key), Some(rest)) = (data.get(..B64_LEN), data.get(B64_LEN..)) else {
        return Err("Invalid length key in key file".into());
    };
    if let Some(&c) = rest.iter().find(|&&c| !is_c_space(c)) {
        return Err(format!(
            "Found trailing character in key file: `{}'",
            char::from(c)
        ));
    }
    String::from_utf8(key.to_vec())
        .map(Some)
        .map_err(|_| "Key is not the correct length or format".into())
}

fn io_text(e: &std::io::Error) -> String {
    e.raw_os_error()
        .map_or_else(|| e.to_string(), errno_message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyfile_rules() {
        assert_eq!(split_keyfile(b""), Ok(None));
        let key = "WAmgVYXkbT2bCtdcDwolI88/iVi/aV3/PHcUBTQSYmo=";
        assert_eq!(
            split_keyfile(format!("{key}\n\n ").as_bytes()),
            Ok(Some(key.into()))
        );
        assert_eq!(
            split_keyfile(b"short\n"),
            Err("Invalid length key in key file".into())
        );
        assert_eq!(
            split_keyfile(format!("{key}x").as_bytes()),
            Err("Found trailing character in key file: `x'".into())
        );
    }
}
