//! OpenSSL `enc` compatible AES-256-CBC (spec `macros.md` §4).
//!
//! File = `Salted__` + 8-byte salt + AES-256-CBC(PKCS#7) ciphertext; key and IV from
//! `EVP_BytesToKey` with MD5 and one iteration: D1 = MD5(pass‖salt), Di = MD5(Di-1‖pass‖salt),
//! key = D1‖D2, IV = D3. This is `openssl enc -aes-256-cbc -md md5 -k PASS` (the MD5 digest is
//! what the SPA firmware's OpenSSL 0.9.7 used; a modern `openssl enc` without `-md md5` uses
//! SHA-256 and the device cannot read it). The salt is a parameter: the caller draws it at
//! random (sans-IO: no RNG in here).

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use md5::{Digest, Md5};

const MAGIC: &[u8; 8] = b"Salted__";

/// Why a file did not decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("not an OpenSSL salted file (no \"Salted__\" header)")]
    NoHeader,
    #[error("ciphertext length {len} is not a non-zero multiple of 16")]
    BadLength { len: usize },
    #[error("bad padding after decryption: wrong pass-phrase or digest")]
    BadPadding,
}

/// `EVP_BytesToKey(AES-256-CBC, MD5, salt, pass, 1)`: (key, iv).
pub fn derive_md5(pass: &[u8], salt: &[u8; 8]) -> ([u8; 32], [u8; 16]) {
    let mut out = [0u8; 48];
    let mut prev: Option<[u8; 16]> = None;
    for chunk in out.chunks_mut(16) {
        let mut h = Md5::new();
        if let Some(p) = prev {
            h.update(p);
        }
        h.update(pass);
        h.update(salt);
        let d: [u8; 16] = h.finalize().into();
        chunk.copy_from_slice(&d);
        prev = Some(d);
    }
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&out[..32]);
    iv.copy_from_slice(&out[32..]);
    (key, iv)
}

/// Encrypts `plain` as `openssl enc -e -aes-256-cbc -md md5 -k pass -S salt` would.
pub fn encrypt(plain: &[u8], pass: &[u8], salt: [u8; 8]) -> Vec<u8> {
    let (key, iv) = derive_md5(pass, &salt);
    let ct = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plain);
    let mut out = Vec::with_capacity(16 + ct.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&ct);
    out
}

/// Decrypts what `openssl enc -e -aes-256-cbc -md md5 -k pass` wrote. Total on any bytes.
pub fn decrypt(file: &[u8], pass: &[u8]) -> Result<Vec<u8>, CryptoError> {
    decrypt_with(file, |salt| derive_md5(pass, salt))
}

/// Decrypts with a caller-chosen key derivation (tests use it to show that SHA-256 fails).
pub fn decrypt_with(
    file: &[u8],
    derive: impl FnOnce(&[u8; 8]) -> ([u8; 32], [u8; 16]),
) -> Result<Vec<u8>, CryptoError> {
    let (Some(magic), Some(salt)) = (file.get(..8), file.get(8..16)) else {
        return Err(CryptoError::NoHeader);
    };
    if magic != MAGIC {
        return Err(CryptoError::NoHeader);
    }
    let ct = &file[16..];
    if ct.is_empty() || !ct.len().is_multiple_of(16) {
        return Err(CryptoError::BadLength { len: ct.len() });
    }
    let mut s = [0u8; 8];
    s.copy_from_slice(salt);
    let (key, iv) = derive(&s);
    cbc::Decryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .map_err(|_| CryptoError::BadPadding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PLAIN: &[u8] = include_bytes!("../../../tests/data/http/profile_plain.xml");
    const ENC: &[u8] = include_bytes!("../../../tests/data/http/profile_aes256cbc_md5.cfg");
    const PASS: &[u8] = b"SecretPhrase1234";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn spec_vector_key_iv() {
        let (key, iv) = derive_md5(PASS, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            hex(&key),
            "75618538a4502fa7161d6dc303f2a1f1c0ee19362ee647e725505c3c52364c82"
        );
        assert_eq!(hex(&iv), "04ca41f7b4e382da569224b0c61b445a");
    }

    #[test]
    fn spec_vector_both_ways() {
        assert_eq!(PLAIN.len(), 92);
        assert_eq!(ENC.len(), 112);
        assert_eq!(decrypt(ENC, PASS).unwrap(), PLAIN);
        assert_eq!(encrypt(PLAIN, PASS, [1, 2, 3, 4, 5, 6, 7, 8]), ENC);
    }

    /// The same file with a SHA-256 KDF (modern `openssl enc` default) fails the padding.
    #[test]
    fn sha256_kdf_fails() {
        use sha2::{Digest as _, Sha256};
        let r = decrypt_with(ENC, |salt| {
            let mut h = Sha256::new();
            h.update(PASS);
            h.update(salt);
            let d1: [u8; 32] = h.finalize().into();
            let mut h = Sha256::new();
            h.update(d1);
            h.update(PASS);
            h.update(salt);
            let d2: [u8; 32] = h.finalize().into();
            let mut iv = [0u8; 16];
            iv.copy_from_slice(&d2[..16]);
            (d1, iv)
        });
        assert_eq!(r, Err(CryptoError::BadPadding));
    }

    #[test]
    fn wrong_pass_and_garbage() {
        assert_eq!(decrypt(ENC, b"wrong"), Err(CryptoError::BadPadding));
        assert_eq!(decrypt(b"", PASS), Err(CryptoError::NoHeader));
        assert_eq!(
            decrypt(b"Salted__1234567", PASS),
            Err(CryptoError::NoHeader)
        );
        assert_eq!(
            decrypt(b"Salted__12345678", PASS),
            Err(CryptoError::BadLength { len: 0 })
        );
        assert_eq!(
            decrypt(b"Salted__12345678abc", PASS),
            Err(CryptoError::BadLength { len: 3 })
        );
    }

    proptest! {
        #[test]
        fn round_trip(plain in proptest::collection::vec(any::<u8>(), 0..300),
                      pass in proptest::collection::vec(any::<u8>(), 0..40),
                      salt in any::<[u8; 8]>()) {
            let enc = encrypt(&plain, &pass, salt);
            prop_assert_eq!(enc.len(), 16 + (plain.len() / 16 + 1) * 16);
            prop_assert_eq!(decrypt(&enc, &pass).unwrap(), plain);
        }

        #[test]
        fn decrypt_total(file in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut f = b"Salted__".to_vec();
            f.extend_from_slice(&file);
            let _ = decrypt(&f, b"k");
            let _ = decrypt(&file, b"k");
        }
    }
}
