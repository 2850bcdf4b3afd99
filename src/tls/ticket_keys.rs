//! Session-ticket keys from a file, shared by a fleet: the `ticket_keys = "FILE"` of the
//! configuration, like HAProxy's `tls-ticket-keys` and nginx's `ssl_session_ticket_key`.
//!
//! This module owns
//! - the key file's format and its parsing ([`parse`], [`read`], [`load`]): one key per line,
//!   standard base64 (padding allowed) of exactly [`KEY_LINE_LEN`] = 48 bytes, a 16-byte key
//!   name followed by a 32-byte AES-256-GCM key (`openssl rand -base64 48` makes one); blank
//!   lines and lines starting with `#` are ignored; 1 to [`MAX_KEYS`] keys with distinct
//!   names;
//! - the ticketer made from them ([`TicketKeys`], a [`ProducesTickets`]): a ticket is
//!   `key name (16) || nonce (12) || AES-256-GCM(state) || tag (16)`, sealed under the first
//!   key with the key name as additional authenticated data and a random nonce; any key of the
//!   file opens a ticket that names it.
//!
//! Every instance that loads the same file issues tickets the others accept, so a client
//! resumes on whichever instance it reaches. Rotation is the file's order: the first key
//! encrypts, every key decrypts.
//!
//! Invariants:
//! - A [`TicketKeys`] holds 1 to [`MAX_KEYS`] keys with distinct names; the first encrypts.
//! - Key material never leaves this module: neither `Debug` (which shows the number of keys and
//!   the lifetime) nor any error (which names the file, the 1-based line and what is wrong)
//!   contains a key's bytes, its base64 or any part of them.
//! - [`TicketKeys::decrypt`] returns `None` for any input it cannot authenticate (too short,
//!   unknown key name, altered byte); it never panics on attacker-controlled bytes.
//! - Nothing here touches a socket; only [`read`] and [`load`] read a file.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use rustls::server::ProducesTickets;

use super::IoReason;

/// Bytes of a key name: the first bytes of a key line and of every ticket.
pub const KEY_NAME_LEN: usize = 16;
/// Bytes of an AES-256-GCM key.
pub const AES_KEY_LEN: usize = 32;
/// Bytes a key line decodes to: the name, then the AES key.
pub const KEY_LINE_LEN: usize = KEY_NAME_LEN + AES_KEY_LEN;
/// The most keys a file may hold.
pub const MAX_KEYS: usize = 16;
/// Default ticket lifetime in seconds: 12 hours, what rustls' own aws-lc-rs `Ticketer`
/// announces (it rotates its key every 6 hours and keeps the previous one).
pub const DEFAULT_LIFETIME: u32 = 12 * 60 * 60;
/// The longest lifetime a TLS 1.3 ticket may announce (RFC 8446 §4.6.1): 7 days.
pub const MAX_LIFETIME: u32 = 7 * 24 * 60 * 60;

/// Bytes of an AES-GCM tag.
const TAG_LEN: usize = 16;
/// Bytes before the ciphertext of a ticket: the key name and the nonce.
const HEADER_LEN: usize = KEY_NAME_LEN + NONCE_LEN;

/// Why a ticket key file was refused. The `Display` is one line that names the file, the
/// 1-based line when one is at fault, and what is wrong; it never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum TicketKeyError {
    /// The file could not be read.
    #[error("{}: {}", .path.display(), IoReason(.source))]
    Read { path: PathBuf, source: io::Error },
    /// A line is not standard base64.
    #[error(
        "{}:{line}: not base64 (expected one key per line, the standard base64 of {KEY_LINE_LEN} \
         random bytes, as `openssl rand -base64 48` prints)",
        .path.display()
    )]
    NotBase64 { path: PathBuf, line: usize },
    /// A line decodes to another length than [`KEY_LINE_LEN`].
    #[error(
        "{}:{line}: the key is {len} bytes, expected {KEY_LINE_LEN} (a {KEY_NAME_LEN}-byte name \
         and a {AES_KEY_LEN}-byte AES-256 key: `openssl rand -base64 48`)",
        .path.display()
    )]
    WrongLength {
        path: PathBuf,
        line: usize,
        len: usize,
    },
    /// The file holds no key (only blank lines and comments).
    #[error(
        "{}: no ticket key (expected at least one line with a key: `openssl rand -base64 48`)",
        .path.display()
    )]
    NoKeys { path: PathBuf },
    /// A key beyond [`MAX_KEYS`].
    #[error("{}:{line}: too many ticket keys: at most {MAX_KEYS}", .path.display())]
    TooMany { path: PathBuf, line: usize },
    /// Two keys have the same name (their first 16 bytes): a ticket could not say which one
    /// sealed it.
    #[error(
        "{}:{line}: duplicate key name: the first {KEY_NAME_LEN} bytes are those of the key on \
         line {first}",
        .path.display()
    )]
    DuplicateName {
        path: PathBuf,
        line: usize,
        first: usize,
    },
    /// aws-lc-rs refused the key (not expected for 32 bytes).
    #[error("{}:{line}: AES-256-GCM refused the key", .path.display())]
    Key { path: PathBuf, line: usize },
}

impl TicketKeyError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            TicketKeyError::Read { path, .. }
            | TicketKeyError::NotBase64 { path, .. }
            | TicketKeyError::WrongLength { path, .. }
            | TicketKeyError::NoKeys { path }
            | TicketKeyError::TooMany { path, .. }
            | TicketKeyError::DuplicateName { path, .. }
            | TicketKeyError::Key { path, .. } => path,
        }
    }

    /// The 1-based line at fault, when one is.
    pub fn line(&self) -> Option<usize> {
        match self {
            TicketKeyError::NotBase64 { line, .. }
            | TicketKeyError::WrongLength { line, .. }
            | TicketKeyError::TooMany { line, .. }
            | TicketKeyError::DuplicateName { line, .. }
            | TicketKeyError::Key { line, .. } => Some(*line),
            TicketKeyError::Read { .. } | TicketKeyError::NoKeys { .. } => None,
        }
    }
}

/// One key of the file: its name and the AEAD key made from its 32 key bytes.
struct TicketKey {
    name: [u8; KEY_NAME_LEN],
    aead: RandomizedNonceKey,
}

/// The session ticketer of a key file: seals with the first key, opens with any. Make it with
/// [`load`] (or [`parse`]) and hand the same one to every listener.
pub struct TicketKeys {
    /// 1 to [`MAX_KEYS`], names distinct; the first encrypts.
    keys: Vec<TicketKey>,
    /// Seconds announced to clients.
    lifetime: u32,
}

/// Shows how many keys and the lifetime, never a key's name or bytes.
impl fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketKeys")
            .field("keys", &self.keys.len())
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl TicketKeys {
    /// How many keys the ticketer holds (1 to [`MAX_KEYS`]).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The ticket lifetime announced to clients, in seconds, at most [`MAX_LIFETIME`]
    /// (longer values are cut to it). Default [`DEFAULT_LIFETIME`]. Keep a retired key in the
    /// file for at least this long so the tickets it sealed still open.
    pub fn with_lifetime(mut self, seconds: u32) -> Self {
        self.lifetime = seconds.min(MAX_LIFETIME);
        self
    }
}

impl ProducesTickets for TicketKeys {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    /// `name || nonce || ciphertext || tag`, sealed under the first key with its name as AAD
    /// and a nonce aws-lc draws at random.
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let current = self.keys.first()?;
        let mut ticket = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
        ticket.extend_from_slice(&current.name);
        ticket.extend_from_slice(&[0; NONCE_LEN]);
        ticket.extend_from_slice(plain);
        let (nonce, tag) = current
            .aead
            .seal_in_place_separate_tag(Aad::from(&current.name), &mut ticket[HEADER_LEN..])
            .ok()?;
        ticket[KEY_NAME_LEN..HEADER_LEN].copy_from_slice(nonce.as_ref());
        ticket.extend_from_slice(tag.as_ref());
        Some(ticket)
    }

    /// Opens a ticket with the key its first 16 bytes name; `None` when it is too short, names
    /// no key of the file, or does not authenticate.
    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let (name, rest) = ticket.split_first_chunk::<KEY_NAME_LEN>()?;
        let (nonce, sealed) = rest.split_first_chunk::<NONCE_LEN>()?;
        if sealed.len() < TAG_LEN {
            return None;
        }
        let key = self.keys.iter().find(|key| &key.name == name)?;
        let mut plain = sealed.to_vec();
        let len = key
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(name),
                &mut plain,
            )
            .ok()?
            .len();
        plain.truncate(len);
        Some(plain)
    }
}

/// Reads and parses a key file (see the module doc for the format); errors name the file and
/// the line. The ticketer has the default lifetime.
pub fn load(path: &Path) -> Result<Arc<TicketKeys>, TicketKeyError> {
    read(path).map(Arc::new)
}

/// Reads and parses a key file, for a caller that sets the lifetime
/// ([`TicketKeys::with_lifetime`]) before sharing it.
pub fn read(path: &Path) -> Result<TicketKeys, TicketKeyError> {
    let bytes = fs::read(path).map_err(|source| TicketKeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_bytes(&bytes, path)
}

/// Parses the text of a key file; `path` is only for the errors.
pub fn parse(text: &str, path: &Path) -> Result<TicketKeys, TicketKeyError> {
    parse_bytes(text.as_bytes(), path)
}

/// [`parse`] on the file's bytes: a line that is not UTF-8 is not base64 either.
fn parse_bytes(bytes: &[u8], path: &Path) -> Result<TicketKeys, TicketKeyError> {
    let path_buf = || path.to_path_buf();
    let mut keys: Vec<TicketKey> = Vec::new();
    // The line of each key, to name the first of two with the same name.
    let mut lines: Vec<usize> = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let text = raw.trim_ascii();
        if text.is_empty() || text.starts_with(b"#") {
            continue;
        }
        if keys.len() == MAX_KEYS {
            return Err(TicketKeyError::TooMany {
                path: path_buf(),
                line,
            });
        }
        // The base64 error is not shown: it would quote the offending character.
        let decoded =
            STANDARD_PAD_INDIFFERENT
                .decode(text)
                .map_err(|_| TicketKeyError::NotBase64 {
                    path: path_buf(),
                    line,
                })?;
        let Some((name, key)) = decoded.split_first_chunk::<KEY_NAME_LEN>() else {
            return Err(wrong_length(path, line, decoded.len()));
        };
        if key.len() != AES_KEY_LEN {
            return Err(wrong_length(path, line, decoded.len()));
        }
        if let Some(position) = keys.iter().position(|known| &known.name == name) {
            return Err(TicketKeyError::DuplicateName {
                path: path_buf(),
                line,
                first: lines[position],
            });
        }
        let aead = RandomizedNonceKey::new(&AES_256_GCM, key).map_err(|_| TicketKeyError::Key {
            path: path_buf(),
            line,
        })?;
        keys.push(TicketKey { name: *name, aead });
        lines.push(line);
    }
    if keys.is_empty() {
        return Err(TicketKeyError::NoKeys { path: path_buf() });
    }
    Ok(TicketKeys {
        keys,
        lifetime: DEFAULT_LIFETIME,
    })
}

fn wrong_length(path: &Path, line: usize, len: usize) -> TicketKeyError {
    TicketKeyError::WrongLength {
        path: path.to_path_buf(),
        line,
        len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::tests::TempDir;

    const FILE: &str = "/etc/ringway/ticket.keys";

    fn path() -> &'static Path {
        Path::new(FILE)
    }

    /// A random key line's 48 bytes, as `openssl rand 48` makes them.
    fn random_key() -> [u8; KEY_LINE_LEN] {
        let mut key = [0; KEY_LINE_LEN];
        aws_lc_rs::rand::fill(&mut key).expect("random key");
        key
    }

    fn line(key: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    fn keys(lines: &[&[u8; KEY_LINE_LEN]]) -> TicketKeys {
        let text: String = lines.iter().map(|key| line(*key) + "\n").collect();
        parse(&text, path()).expect("valid key file")
    }

    /// A TLS session state stand-in: what rustls hands `encrypt`.
    const STATE: &[u8] = b"the session state rustls serializes into a ticket";

    /// Whether `text` shows any part of `key`: an 8-character run of its base64 (at each of
    /// the three alignments a substring of the key can encode at), or 4 bytes of it in hex or
    /// as Rust's `Debug` of a byte array would print them.
    fn shows_key(text: &str, key: &[u8]) -> bool {
        let encodings = (0..3).map(|skip| line(&key[skip..]));
        let base64_runs = encodings.into_iter().any(|encoded| {
            let chars: Vec<char> = encoded.trim_end_matches('=').chars().collect();
            chars
                .windows(8)
                .any(|run| text.contains(&run.iter().collect::<String>()))
        });
        let byte_runs = key.windows(4).any(|run| {
            let hex: String = run.iter().map(|b| format!("{b:02x}")).collect();
            let debug = format!("{:?}", run);
            let debug = debug.trim_start_matches('[').trim_end_matches(']');
            text.to_ascii_lowercase().contains(&hex) || text.contains(debug)
        });
        base64_runs || byte_runs
    }

    fn parse_error(text: &str) -> TicketKeyError {
        match parse(text, path()) {
            Ok(keys) => panic!("{text:?} parsed to {keys:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn constants_agree_with_aws_lc() {
        assert_eq!(AES_256_GCM.key_len(), AES_KEY_LEN);
        assert_eq!(AES_256_GCM.tag_len(), TAG_LEN);
        assert_eq!(AES_256_GCM.nonce_len(), NONCE_LEN);
        assert_eq!(NONCE_LEN, 12);
        // 48 bytes are 64 base64 characters without padding.
        assert_eq!(line(&random_key()).len(), 64);
    }

    #[test]
    fn round_trip() {
        let ticketer = keys(&[&random_key()]);
        assert!(ticketer.enabled());
        assert_eq!(ticketer.lifetime(), DEFAULT_LIFETIME);
        let ticket = ticketer.encrypt(STATE).expect("encrypt");
        assert_eq!(ticket.len(), HEADER_LEN + STATE.len() + TAG_LEN);
        assert!(
            !ticket.windows(STATE.len()).any(|w| w == STATE),
            "the state is encrypted"
        );
        assert_eq!(ticketer.decrypt(&ticket).as_deref(), Some(STATE));
        assert_eq!(
            ticketer.decrypt(&ticketer.encrypt(b"").expect("empty")),
            Some(Vec::new())
        );
    }

    #[test]
    fn a_ticket_starts_with_the_first_key_name_and_nonces_differ() {
        let a = random_key();
        let ticketer = keys(&[&a, &random_key()]);
        let one = ticketer.encrypt(STATE).expect("encrypt");
        let two = ticketer.encrypt(STATE).expect("encrypt");
        assert_eq!(one[..KEY_NAME_LEN], a[..KEY_NAME_LEN]);
        assert_eq!(two[..KEY_NAME_LEN], a[..KEY_NAME_LEN]);
        assert_ne!(one[KEY_NAME_LEN..HEADER_LEN], two[KEY_NAME_LEN..HEADER_LEN]);
        assert_ne!(one, two);
    }

    #[test]
    fn rotation_the_first_key_encrypts_every_key_decrypts() {
        let (a, b) = (random_key(), random_key());
        // Before: B alone. After the rotation: A prepended, B kept second.
        let before = keys(&[&b]);
        let after = keys(&[&a, &b]);
        let old_ticket = before.encrypt(STATE).expect("encrypt");
        assert_eq!(after.decrypt(&old_ticket).as_deref(), Some(STATE));

        let new_ticket = after.encrypt(STATE).expect("encrypt");
        assert_eq!(new_ticket[..KEY_NAME_LEN], a[..KEY_NAME_LEN]);
        assert_eq!(before.decrypt(&new_ticket), None, "B alone cannot open A's");
        assert_eq!(after.decrypt(&new_ticket).as_deref(), Some(STATE));

        // The fleet step: A listed second everywhere first, so it already opens A's tickets
        // from instances that moved it first.
        let staged = keys(&[&b, &a]);
        assert_eq!(staged.decrypt(&new_ticket).as_deref(), Some(STATE));
        assert_eq!(
            staged.encrypt(STATE).expect("encrypt")[..KEY_NAME_LEN],
            b[..KEY_NAME_LEN]
        );
    }

    #[test]
    fn fleet_instances_loaded_from_the_same_text_open_each_others_tickets() {
        let a = random_key();
        let text = format!("# fleet key\n{}\n", line(&a));
        let one = parse(&text, path()).expect("one");
        let two = parse(&text, path()).expect("two");
        let ticket = one.encrypt(STATE).expect("encrypt");
        assert_eq!(two.decrypt(&ticket).as_deref(), Some(STATE));
        let ticket = two.encrypt(STATE).expect("encrypt");
        assert_eq!(one.decrypt(&ticket).as_deref(), Some(STATE));
    }

    #[test]
    fn unknown_names_altered_and_short_tickets_are_refused() {
        let ticketer = keys(&[&random_key()]);
        let stranger = keys(&[&random_key()]);
        let ticket = ticketer.encrypt(STATE).expect("encrypt");

        assert_eq!(stranger.decrypt(&ticket), None, "unknown key name");

        for position in [0, KEY_NAME_LEN, HEADER_LEN, ticket.len() - 1] {
            let mut altered = ticket.clone();
            altered[position] ^= 0x01;
            assert_eq!(ticketer.decrypt(&altered), None, "byte {position} altered");
        }

        for len in [
            0,
            1,
            KEY_NAME_LEN,
            HEADER_LEN,
            HEADER_LEN + TAG_LEN - 1,
            ticket.len() - 1,
        ] {
            assert_eq!(ticketer.decrypt(&ticket[..len]), None, "{len} bytes");
        }
        let mut longer = ticket.clone();
        longer.push(0);
        assert_eq!(ticketer.decrypt(&longer), None, "a byte appended");
    }

    #[test]
    fn a_ticket_with_the_right_name_but_another_key_is_refused() {
        // Same name, different AES key: the tag does not verify.
        let a = random_key();
        let mut forged = random_key();
        forged[..KEY_NAME_LEN].copy_from_slice(&a[..KEY_NAME_LEN]);
        let ticket = keys(&[&forged]).encrypt(STATE).expect("encrypt");
        assert_eq!(keys(&[&a]).decrypt(&ticket), None);
    }

    #[test]
    fn the_format_comments_blank_lines_padding_and_line_ends() {
        let (a, b) = (random_key(), random_key());
        let text = format!(
            "# ringway ticket keys\n\n   \n{}\r\n  {}  \n# retired later\n",
            line(&a),
            line(&b)
        );
        let ticketer = parse(&text, path()).expect("valid");
        assert_eq!(ticketer.key_count(), 2);
        assert_eq!(
            ticketer.encrypt(STATE).expect("encrypt")[..KEY_NAME_LEN],
            a[..KEY_NAME_LEN]
        );

        let sixteen: String = (0..MAX_KEYS).map(|_| line(&random_key()) + "\n").collect();
        assert_eq!(parse(&sixteen, path()).expect("16").key_count(), MAX_KEYS);

        // Padding is allowed where base64 needs it (only a wrong length needs it here) and
        // left out where it does not.
        let error = parse_error(&line(&a[..47]));
        assert!(line(&a[..47]).ends_with('='));
        assert!(matches!(
            error,
            TicketKeyError::WrongLength {
                line: 1,
                len: 47,
                ..
            }
        ));
        let unpadded = line(&a[..47]).trim_end_matches('=').to_owned();
        assert!(matches!(
            parse_error(&unpadded),
            TicketKeyError::WrongLength { len: 47, .. }
        ));
    }

    #[test]
    fn lifetime_is_configurable_and_bounded() {
        let ticketer = keys(&[&random_key()]).with_lifetime(3600);
        assert_eq!(ticketer.lifetime(), 3600);
        let ticketer = ticketer.with_lifetime(u32::MAX);
        assert_eq!(ticketer.lifetime(), MAX_LIFETIME);
    }

    #[test]
    fn each_malformed_file_is_refused_naming_the_line() {
        let (a, b) = (random_key(), random_key());
        let (la, lb) = (line(&a), line(&b));
        let mut not_base64 = la.clone();
        not_base64.replace_range(10..11, "!");
        let mut same_name = random_key();
        same_name[..KEY_NAME_LEN].copy_from_slice(&b[..KEY_NAME_LEN]);
        let seventeen: String = (0..=MAX_KEYS).map(|_| line(&random_key()) + "\n").collect();

        let cases: Vec<(String, Option<usize>, &str)> = vec![
            (format!("# a\n{not_base64}\n"), Some(2), "not base64"),
            (format!("{la}\n{la} {lb}\n"), Some(2), "not base64"),
            (
                format!("{la}\n\n{}\n", line(&b[..32])),
                Some(3),
                "the key is 32 bytes, expected 48",
            ),
            (
                format!("{}\n", line(&[a.as_slice(), &b[..4]].concat())),
                Some(1),
                "the key is 52 bytes, expected 48",
            ),
            (
                format!("{}\n", line(&a[..8])),
                Some(1),
                "the key is 8 bytes, expected 48",
            ),
            ("\n# only a comment\n  \n".to_owned(), None, "no ticket key"),
            (String::new(), None, "no ticket key"),
            (seventeen, Some(17), "too many ticket keys: at most 16"),
            (
                format!("# keys\n{lb}\n{la}\n{}\n", line(&same_name)),
                Some(4),
                "duplicate key name: the first 16 bytes are those of the key on line 2",
            ),
            (
                format!("{lb}\n{lb}\n"),
                Some(2),
                "duplicate key name: the first 16 bytes are those of the key on line 1",
            ),
        ];
        for (text, line, what) in cases {
            let error = parse_error(&text);
            assert_eq!(error.line(), line, "{error}");
            assert_eq!(error.path(), path());
            let shown = error.to_string();
            let expected_start = match line {
                Some(line) => format!("{FILE}:{line}: {what}"),
                None => format!("{FILE}: {what}"),
            };
            assert!(
                shown.starts_with(&expected_start),
                "{shown:?} should start with {expected_start:?}"
            );
            assert!(!shown.contains('\n'), "one line: {shown}");
            let debug = format!("{error:?}");
            for key in [&a[..], &b[..], &same_name[..]] {
                assert!(!shows_key(&shown, key), "key material in {shown}");
                assert!(!shows_key(&debug, key), "key material in {debug}");
            }
        }
    }

    #[test]
    fn a_line_that_is_not_utf8_is_not_base64() {
        let mut bytes = line(&random_key()).into_bytes();
        bytes.extend_from_slice(b"\n\xff\xfe\n");
        let error = parse_bytes(&bytes, path()).expect_err("refused");
        assert!(matches!(error, TicketKeyError::NotBase64 { line: 2, .. }));
    }

    #[test]
    fn debug_shows_the_count_never_the_keys() {
        let (a, b) = (random_key(), random_key());
        let ticketer = keys(&[&a, &b]);
        let debug = format!("{ticketer:?}");
        assert_eq!(debug, "TicketKeys { keys: 2, lifetime: 43200 }");
        let pretty = format!("{ticketer:#?}");
        for key in [&a, &b] {
            assert!(!shows_key(&debug, key));
            assert!(!shows_key(&pretty, key));
        }
        // The check itself finds a key when one is there.
        assert!(shows_key(&format!("x{}y", line(&a)), &a));
        assert!(shows_key(&format!("{:?}", &a[..]), &a));
        assert!(shows_key(&line(&a[5..20]), &a));
    }

    #[test]
    fn load_reads_the_file_and_names_it() {
        let dir = TempDir::new("ticket-keys");
        let file = dir.path().join("ticket.keys");
        let a = random_key();
        fs::write(&file, format!("{}\n", line(&a))).expect("write");
        let ticketer = load(&file).expect("load");
        assert_eq!(ticketer.key_count(), 1);
        let ticket = ticketer.encrypt(STATE).expect("encrypt");
        assert_eq!(
            read(&file)
                .expect("read")
                .with_lifetime(60)
                .decrypt(&ticket)
                .as_deref(),
            Some(STATE)
        );

        let missing = dir.path().join("missing.keys");
        let error = load(&missing).expect_err("missing");
        assert!(matches!(error, TicketKeyError::Read { .. }));
        assert_eq!(
            error.to_string(),
            format!("{}: No such file or directory", missing.display())
        );

        fs::write(&file, "# nothing yet\n").expect("write");
        let error = load(&file).expect_err("empty");
        assert_eq!(error.path(), file);
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}: no ticket key", file.display()))
        );
    }
}
