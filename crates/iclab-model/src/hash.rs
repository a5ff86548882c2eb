//! The FNV-1a hash of the run files: checkpoint checksums and the training trajectory's hash.

/// 64-bit FNV-1a over 8-byte words (fast enough for 100 MB checkpoints, and any flipped bit or
/// swapped word changes it). Also used for config hashes.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(PRIME);
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(PRIME);
    }
    h ^ bytes.len() as u64
}
