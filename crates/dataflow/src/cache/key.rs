//! Cache keys: SHA-256 over tagged, length-prefixed fields, so that no two different
//! sequences of fields hash the same bytes (`"ab" + "c"` is not `"a" + "bc"`).

use sha2::{Digest, Sha256};

/// The key of a node output: 32 bytes of SHA-256, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// The key in hex (the entry's file name).
    pub fn hex(&self) -> String {
        kf_datapull::fingerprint::hex(&self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Key> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Key(out))
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", &self.hex()[..16])
    }
}

/// Builds a [`Key`] from named fields.
pub struct KeyBuilder(Sha256);

impl Default for KeyBuilder {
    fn default() -> Self {
        KeyBuilder::new()
    }
}

impl KeyBuilder {
    /// A builder for one key.
    pub fn new() -> KeyBuilder {
        KeyBuilder(Sha256::new())
    }

    /// Adds the field `tag` with value `bytes`; both are length-prefixed.
    pub fn field(&mut self, tag: &str, bytes: &[u8]) -> &mut KeyBuilder {
        self.0.update((tag.len() as u64).to_le_bytes());
        self.0.update(tag.as_bytes());
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// Adds a text field.
    pub fn text(&mut self, tag: &str, text: &str) -> &mut KeyBuilder {
        self.field(tag, text.as_bytes())
    }

    /// The key.
    pub fn finish(self) -> Key {
        Key(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kf_datapull::fingerprint::frame_digest;
    use kf_frame::Frame;

    fn key(fields: &[(&str, &str)]) -> Key {
        let mut b = KeyBuilder::new();
        for (t, v) in fields {
            b.text(t, v);
        }
        b.finish()
    }

    #[test]
    fn fields_are_delimited_and_hex_round_trips() {
        assert_ne!(key(&[("a", "bc")]), key(&[("a", "b"), ("", "c")]));
        assert_ne!(key(&[("ab", "c")]), key(&[("a", "bc")]));
        assert_eq!(key(&[("a", "b")]), key(&[("a", "b")]));
        let k = key(&[("x", "y")]);
        assert_eq!(Key::from_hex(&k.hex()), Some(k));
        assert_eq!(Key::from_hex("zz"), None);
    }

    #[test]
    fn frame_digests_see_every_bit() {
        let f = |v: f64| {
            Frame::new(
                vec![1],
                vec![1],
                vec!["a".into()],
                vec![("x".into(), vec![v])],
            )
            .unwrap()
        };
        assert_ne!(frame_digest(&f(0.0)), frame_digest(&f(-0.0)));
        let (n1, n2) = (f64::from_bits(0x7ff8_0000_0000_0001), f64::NAN);
        assert_ne!(frame_digest(&f(n1)), frame_digest(&f(n2)));
        assert_eq!(frame_digest(&f(1.5)), frame_digest(&f(1.5)));
    }
}
