//! The integrity check over a cache file's bytes (not a MAC: the file is root-owned and public).

/// Integrity check over 8-byte little-endian words (the last one zero-padded). Each step,
/// `h = rotl((h ^ w) * K, 31)`, is a bijection of `h`, so changing any single word always changes
/// the result; that is all a checksum against torn or damaged files needs. It is not a MAC: the
/// file is root-owned and holds public data. Eight bytes per step keeps map time negligible.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = 0xcbf2_9ce4_8422_2325 ^ (bytes.len() as u64);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(31);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        for (d, s) in word.iter_mut().zip(rest) {
            *d = *s;
        }
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(31);
    }
    h ^ (h >> 29)
}
