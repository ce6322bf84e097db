//! The shared cookie and the handshake MAC.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::CookieError;

/// Environment variable that holds the cookie; it wins over the file.
pub const COOKIE_ENV: &str = "IRIS_COOKIE";

/// Name of the cookie file in the user's home directory.
pub const COOKIE_FILE_NAME: &str = ".iris.cookie";

/// Length of a generated cookie (alphanumeric characters).
pub const COOKIE_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The secret shared by all nodes of a mesh (Erlang's cookie). Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Cookie(Vec<u8>);

impl Cookie {
    /// A cookie from raw bytes; `None` if empty.
    pub fn new(secret: impl Into<Vec<u8>>) -> Option<Cookie> {
        let secret = secret.into();
        (!secret.is_empty()).then_some(Cookie(secret))
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `$HOME/.iris.cookie` (`%USERPROFILE%` on Windows), if a home directory is known.
    pub fn default_path() -> Option<PathBuf> {
        std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(COOKIE_FILE_NAME))
    }

    /// The cookie from `IRIS_COOKIE`, else from [`Cookie::default_path`] (created on first use).
    pub fn load() -> Result<Cookie, CookieError> {
        if let Some(v) = std::env::var_os(COOKIE_ENV) {
            return Cookie::new(v.into_encoded_bytes()).ok_or(CookieError::Empty);
        }
        Cookie::load_or_create(Cookie::default_path().ok_or(CookieError::NoHome)?)
    }

    /// Read the cookie file at `path`; if it does not exist, create it with permissions `0600`
    /// (on unix) holding [`COOKIE_LEN`] random alphanumeric characters. Surrounding whitespace
    /// in the file is ignored.
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<Cookie, CookieError> {
        let path = path.as_ref();
        let io_err = |source| CookieError::Io {
            path: path.to_owned(),
            source,
        };
        match fs::read(path) {
            Ok(bytes) => return Cookie::new(bytes.trim_ascii()).ok_or(CookieError::Empty),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let secret = random_alphanumeric().map_err(CookieError::Random)?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(&secret).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                Ok(Cookie(secret))
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let bytes = fs::read(path).map_err(io_err)?;
                Cookie::new(bytes.trim_ascii()).ok_or(CookieError::Empty)
            }
            Err(e) => Err(io_err(e)),
        }
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(<redacted>)")
    }
}

fn random_alphanumeric() -> io::Result<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = Vec::with_capacity(COOKIE_LEN);
    let mut buf = [0u8; 64];
    while out.len() < COOKIE_LEN {
        getrandom::fill(&mut buf).map_err(|e| io::Error::other(e.to_string()))?;
        // Rejection sampling keeps the distribution uniform: 248 = 4 * 62.
        out.extend(
            buf.iter()
                .filter(|&&b| b < 248)
                .map(|&b| ALPHABET[usize::from(b) % ALPHABET.len()]),
        );
    }
    out.truncate(COOKIE_LEN);
    Ok(out)
}

/// A fresh random handshake challenge.
pub fn new_challenge() -> io::Result<[u8; 32]> {
    let mut c = [0u8; 32];
    getrandom::fill(&mut c).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(c)
}

fn keyed(cookie: &Cookie) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(cookie.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// HMAC-SHA256 of `challenge` keyed with the cookie: the answer to a peer's challenge.
pub fn mac(cookie: &Cookie, challenge: &[u8; 32]) -> [u8; 32] {
    let mut m = keyed(cookie);
    m.update(challenge);
    m.finalize().into_bytes().into()
}

/// Whether `tag` is the MAC of `challenge` under the cookie, compared in constant time.
pub fn verify(cookie: &Cookie, challenge: &[u8; 32], tag: &[u8; 32]) -> bool {
    let mut m = keyed(cookie);
    m.update(challenge);
    m.verify_slice(tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "iris-wire-{tag}-{}-{:x}",
            std::process::id(),
            u64::from_be_bytes(new_challenge().unwrap()[..8].try_into().unwrap())
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn creates_file_once_then_reads_it() {
        let dir = temp_dir("create");
        let path = dir.join(COOKIE_FILE_NAME);
        let first = Cookie::load_or_create(&path).unwrap();
        assert_eq!(first.as_bytes().len(), COOKIE_LEN);
        assert!(first.as_bytes().iter().all(u8::is_ascii_alphanumeric));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = Cookie::load_or_create(&path).unwrap();
        assert_eq!(first, second);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn existing_file_is_trimmed_and_empty_is_refused() {
        let dir = temp_dir("existing");
        let path = dir.join("c");
        fs::write(&path, "  secret\n").unwrap();
        assert_eq!(Cookie::load_or_create(&path).unwrap().as_bytes(), b"secret");
        fs::write(&path, "\n").unwrap();
        assert!(matches!(
            Cookie::load_or_create(&path),
            Err(CookieError::Empty)
        ));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_directory_is_an_io_error() {
        let dir = temp_dir("missing");
        let path = dir.join("no/such/dir/cookie");
        assert!(matches!(
            Cookie::load_or_create(&path),
            Err(CookieError::Io { .. })
        ));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn mac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: the primitive is HMAC-SHA256.
        let cookie = Cookie::new(*b"Jefe").unwrap();
        let mut m = keyed(&cookie);
        m.update(b"what do ya want for nothing?");
        let out: [u8; 32] = m.finalize().into_bytes().into();
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let challenge = new_challenge().unwrap();
        let tag = mac(&cookie, &challenge);
        assert!(verify(&cookie, &challenge, &tag));
        let mut bad = tag;
        bad[31] ^= 1;
        assert!(!verify(&cookie, &challenge, &bad));
        let other = Cookie::new(*b"other").unwrap();
        assert!(!verify(&other, &challenge, &tag));
    }

    #[test]
    fn debug_is_redacted_and_empty_refused() {
        let c = Cookie::new(*b"topsecret").unwrap();
        assert!(!format!("{c:?}").contains("topsecret"));
        assert!(Cookie::new(Vec::new()).is_none());
    }
}
