//! Identifiers that would otherwise travel as bare strings: a dialog's Call-ID (RFC 3261
//! §8.1.1.4) and a From/To tag (§19.3). Compared byte for byte, as §12 compares them.

use std::fmt;

/// A Call-ID header value (RFC 3261 §8.1.1.4, §20.8).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CallId(String);

/// A From or To tag (RFC 3261 §19.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Tag(String);

macro_rules! string_id {
    ($t:ident) => {
        impl $t {
            /// The identifier as written on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $t {
            fn from(s: &str) -> $t {
                $t(s.to_string())
            }
        }

        impl From<String> for $t {
            fn from(s: String) -> $t {
                $t(s)
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(CallId);
string_id!(Tag);
