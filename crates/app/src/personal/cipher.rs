//! The one AEAD of personal data (XChaCha20-Poly1305): subject keys sealed
//! by the master key, and personal values sealed by a subject key, each with
//! what it belongs to bound in as associated data.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Bytes of a key (master or subject).
pub const KEY_LEN: usize = 32;
/// Bytes of a nonce: 192 bits, so random nonces never repeat in practice.
pub const NONCE_LEN: usize = 24;

/// A 256-bit secret key. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// A fresh random key from the operating system's generator.
    #[must_use]
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        Self(key.into())
    }

    /// A key from its bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes (to be sealed, never stored plain).
    #[must_use]
    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Seals `plaintext` bound to `binding`: a fresh random nonce and the
    /// ciphertext with its tag.
    #[must_use]
    pub fn seal(&self, plaintext: &[u8], binding: &[u8]) -> Sealed {
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: binding,
                },
            )
            // Encryption fails only for messages beyond 256 GiB.
            .unwrap_or_default();
        Sealed {
            nonce: nonce.into(),
            ciphertext,
        }
    }

    /// Opens what [`SecretKey::seal`] sealed with this key and `binding`;
    /// `None` for another key, another binding, or altered bytes.
    #[must_use]
    pub fn open(&self, sealed: &Sealed, binding: &[u8]) -> Option<Vec<u8>> {
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: binding,
                },
            )
            .ok()
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        // Best effort: leave no copy of the key in memory this value owned.
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

/// A sealed value: nonce and ciphertext (tag included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The nonce it was sealed with.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// One byte string: nonce then ciphertext.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(NONCE_LEN + self.ciphertext.len());
        bytes.extend_from_slice(&self.nonce);
        bytes.extend_from_slice(&self.ciphertext);
        bytes
    }

    /// Reads [`Sealed::to_bytes`]; `None` when too short.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        Some(Self {
            nonce: nonce.try_into().ok()?,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

/// Joins the parts of an associated-data binding unambiguously: each part
/// preceded by its length.
#[must_use]
pub fn binding(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_binding() {
        // Given a value sealed with a key, bound to "a"
        let key = SecretKey::generate();
        let sealed = key.seal(b"alice", b"a");
        // Then it opens with the same key and binding
        assert_eq!(key.open(&sealed, b"a").as_deref(), Some(&b"alice"[..]));
        // And not with another binding, another key, or a flipped byte
        assert_eq!(key.open(&sealed, b"b"), None);
        assert_eq!(SecretKey::generate().open(&sealed, b"a"), None);
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert_eq!(key.open(&altered, b"a"), None);
        // And two seals of one value never look alike (random nonces)
        assert_ne!(key.seal(b"alice", b"a"), sealed);
    }

    #[test]
    fn bindings_of_different_parts_differ() {
        assert_ne!(binding(&[b"ab", b"c"]), binding(&[b"a", b"bc"]));
    }
}
