//! Errors: [`ConfigError`] and [`Location`], and turning toml's errors and validation's into
//! one-line errors that name the key and where it is written: the key at a toml error's
//! position ([`toml_error`]), the position of a key validation names ([`locate`]).

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::access_log::CheckError;
use crate::tls::{self, TlsError};

/// Where in the configuration file an error was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The file, when the document was read with [`Config::load`].
    ///
    /// [`Config::load`]: super::Config::load
    pub file: Option<PathBuf>,
    /// 1-based line and column (in characters).
    pub line_column: Option<(usize, usize)>,
}

/// Shows as ` (ringway.toml:12:14)`, ` (line 12, column 14)`, ` (ringway.toml)` or nothing.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line_column) {
            (Some(file), Some((line, column))) => {
                write!(f, " ({}:{line}:{column})", file.display())
            }
            (Some(file), None) => write!(f, " ({})", file.display()),
            (None, Some((line, column))) => write!(f, " (line {line}, column {column})"),
            (None, None) => Ok(()),
        }
    }
}

/// Why a configuration was refused. `Display` is one line naming the key and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("{}: {}", .path.display(), tls::IoReason(.source))]
    Read { path: PathBuf, source: io::Error },
    /// The document is not TOML (no key can be named).
    #[error("invalid TOML: {message}{at}")]
    Syntax { message: String, at: Location },
    /// A key is unknown, of the wrong type, missing, or has a value ringway refuses.
    #[error("{key}: {reason}{at}")]
    Invalid {
        /// The key path, e.g. `listener[0].backends[1]`.
        key: String,
        reason: String,
        at: Location,
    },
    /// A certificate, key or OCSP file of `listener[i].certificate[j]` is unusable (`key` ends
    /// in `.cert`, `.key` or `.ocsp` for the file at fault), or a client CA or CRL file
    /// (`listener[i].client_auth.ca`, `.crl`).
    #[error("{key}: {source}")]
    Certificate { key: String, source: TlsError },
    /// A listener's TLS configuration could not be built (`key` is `listener[i]`), or the
    /// `ticket_keys` file is unusable (`key` is `ticket_keys`; the error names the file and
    /// the line).
    #[error("{key}: {source}")]
    Tls { key: String, source: TlsError },
    /// The access log file cannot be written (`key` is `access_log.path`; the error names the
    /// file, or the directory it cannot be created in).
    #[error("{key}: {source}")]
    AccessLog { key: String, source: CheckError },
}

impl ConfigError {
    /// The key path the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. }
            | ConfigError::Certificate { key, .. }
            | ConfigError::Tls { key, .. }
            | ConfigError::AccessLog { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }

    pub(super) fn in_file(mut self, path: &Path) -> Self {
        if let ConfigError::Syntax { at, .. } | ConfigError::Invalid { at, .. } = &mut self {
            at.file = Some(path.to_path_buf());
        }
        self
    }
}

pub(super) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
        at: Location::default(),
    }
}

// ---------------------------------------------------------------------------------------------
// toml errors → key path and position

/// Turns a toml/serde error into a one-line error naming the key at the error's position.
pub(super) fn toml_error(text: &str, error: &toml::de::Error) -> ConfigError {
    // toml's messages are one line; make sure of it, and do not show serde's names for
    // ringway's internal types.
    let mut message = one_line(error.message());
    for (internal, shown) in [
        ("expected usize", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
    ] {
        message = message.replace(internal, shown);
    }
    while let Some(start) = message.find("struct Raw") {
        let end = message[start + "struct ".len()..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(message.len(), |len| start + "struct ".len() + len);
        message.replace_range(start..end, "a table");
    }
    let at = Location {
        file: None,
        line_column: error.span().map(|span| line_column(text, span.start)),
    };
    match error.span().and_then(|span| key_at(text, span)) {
        Some(key) if key == "listener" && message.contains("expected a sequence") => {
            ConfigError::Invalid {
                key,
                reason: format!("{message}: write each listener as [[listener]]"),
                at,
            }
        }
        Some(key) => ConfigError::Invalid {
            key,
            reason: message,
            at,
        },
        None => ConfigError::Syntax { message, at },
    }
}

/// Adds the position of the key to an [`ConfigError::Invalid`] from [`Config::validate`]: the
/// key's value if the document has it, else its nearest enclosing table or array (a missing
/// `backends` points at its `[[listener]]`). Keys the document lacks altogether (`listener`
/// in an empty file) get no position.
///
/// [`Config::validate`]: super::Config::validate
pub(super) fn locate(text: &str, error: ConfigError) -> ConfigError {
    match error {
        ConfigError::Invalid { key, reason, at } if at.line_column.is_none() => {
            let line_column = span_of(text, &key).map(|span| line_column(text, span.start));
            ConfigError::Invalid {
                key,
                reason,
                at: Location { line_column, ..at },
            }
        }
        other => other,
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// One key of the document: its path (`listener[0].certificate[1].key`; array elements are
/// entries too, with an empty key span), where the key is written and where its value is. A
/// table opened by a header (`[[listener]]`) has the header as its value span, so a table's
/// span never contains its keys'.
struct Entry {
    path: String,
    key: Range<usize>,
    value: Range<usize>,
}

/// Every key and array element of the document, parents before children; `None` when the
/// document is not TOML.
fn entries(text: &str) -> Option<Vec<Entry>> {
    use toml::de::{DeTable, DeValue};

    fn walk_value(value: &Spanned<DeValue<'_>>, path: &str, out: &mut Vec<Entry>) {
        match value.get_ref() {
            DeValue::Table(table) => walk_table(table, path, out),
            DeValue::Array(array) => {
                for (index, item) in array.iter().enumerate() {
                    let path = format!("{path}[{index}]");
                    out.push(Entry {
                        path: path.clone(),
                        key: 0..0,
                        value: item.span(),
                    });
                    walk_value(item, &path, out);
                }
            }
            _ => {}
        }
    }

    fn walk_table(table: &DeTable<'_>, path: &str, out: &mut Vec<Entry>) {
        for (key, value) in table.iter() {
            let key_text = shown_key(key.get_ref());
            let child = if path.is_empty() {
                key_text
            } else {
                format!("{path}.{key_text}")
            };
            out.push(Entry {
                path: child.clone(),
                key: key.span(),
                value: value.span(),
            });
            walk_value(value, &child, out);
        }
    }

    let document = DeTable::parse(text).ok()?;
    let mut out = Vec::new();
    walk_table(document.get_ref(), "", &mut out);
    Some(out)
}

/// The key path of the smallest key or value whose span contains `span` (on a tie, the deeper
/// one): where serde reported an error.
/// A key as an error names it: bare keys as written, any other (empty, or with characters a
/// bare key cannot have: a line break, a dot, a space) quoted with escapes, so that the error
/// stays one line and names something.
fn shown_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// A message of the TOML parser on one line: its own line breaks become `; `, other control
/// characters (from the document, quoted in the message) are escaped.
fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.trim().chars() {
        match c {
            '\n' => out.push_str("; "),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

fn key_at(text: &str, span: Range<usize>) -> Option<String> {
    let contains = |node: &Range<usize>| {
        node.start <= span.start && span.end <= node.end && node.start < node.end
    };
    let mut best: Option<(usize, String)> = None;
    for entry in entries(text)? {
        for node in [&entry.key, &entry.value] {
            let len = node.end - node.start;
            if contains(node) && best.as_ref().is_none_or(|(best, _)| len <= *best) {
                best = Some((len, entry.path.clone()));
            }
        }
    }
    best.map(|(_, path)| path)
}

/// Where the value of `key` is written, or of its nearest ancestor that is.
fn span_of(text: &str, key: &str) -> Option<Range<usize>> {
    let entries = entries(text)?;
    let mut key = key;
    loop {
        if let Some(entry) = entries.iter().find(|entry| entry.path == key) {
            return Some(entry.value.clone());
        }
        key = &key[..key.rfind(['.', '['])?];
    }
}
