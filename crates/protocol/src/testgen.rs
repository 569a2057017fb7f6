//! Test-only random value generation for the generated message types.
//!
//! proptest drives the seed; a small deterministic generator fills every
//! field. Deriving proptest strategies for ~500 generated structs would cost
//! far more compile time than it buys in shrinking.

use bytes::{Bytes, BytesMut};
use uuid::Uuid;

use crate::{Decode, Encode};

/// Deterministic xorshift generator seeded by proptest.
#[derive(Debug)]
pub struct Gen {
    state: u64,
}

impl Gen {
    /// A generator for `seed` (zero is remapped; xorshift needs a set bit).
    pub fn new(seed: u64) -> Self {
        Gen { state: seed | 1 }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    fn small(&mut self, below: u64) -> usize {
        (self.next_u64() % below) as usize
    }
}

/// Produces an arbitrary value.
pub trait Arbitrary {
    /// A random value, small enough that nested messages stay cheap.
    fn arbitrary(g: &mut Gen) -> Self;
}

macro_rules! int_arb {
    ($($t:ty),*) => {$(
        impl Arbitrary for $t {
            fn arbitrary(g: &mut Gen) -> Self {
                // Bias towards edge values, which find the most bugs.
                match g.small(4) {
                    0 => 0,
                    1 => <$t>::MAX,
                    2 => <$t>::MIN,
                    _ => g.next_u64() as $t,
                }
            }
        }
    )*};
}
int_arb!(i8, i16, i32, i64, u16, u32);

impl Arbitrary for bool {
    fn arbitrary(g: &mut Gen) -> Self {
        g.next_u64() & 1 == 1
    }
}

impl Arbitrary for f64 {
    fn arbitrary(g: &mut Gen) -> Self {
        // Finite values only: NaN != NaN would break equality checks.
        (g.next_u64() % 1_000_000) as f64 / 7.0
    }
}

impl Arbitrary for String {
    fn arbitrary(g: &mut Gen) -> Self {
        const ALPHABET: &[&str] = &["a", "Z", "-", ".", "_", "0", "é", "🦀"];
        let n = g.small(6);
        (0..n)
            .map(|_| ALPHABET[g.small(ALPHABET.len() as u64)])
            .collect()
    }
}

impl Arbitrary for Bytes {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = g.small(8);
        Bytes::from((0..n).map(|_| g.next_u64() as u8).collect::<Vec<u8>>())
    }
}

impl Arbitrary for crate::Records {
    fn arbitrary(g: &mut Gen) -> Self {
        crate::Records::Memory(Bytes::arbitrary(g))
    }
}

impl Arbitrary for Uuid {
    fn arbitrary(g: &mut Gen) -> Self {
        if g.small(3) == 0 {
            return Uuid::nil();
        }
        let hi = g.next_u64();
        let lo = g.next_u64();
        Uuid::from_u64_pair(hi, lo)
    }
}

impl<T: Arbitrary> Arbitrary for Vec<T> {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = g.small(3);
        (0..n).map(|_| T::arbitrary(g)).collect()
    }
}

impl<T: Arbitrary> Arbitrary for Option<T> {
    fn arbitrary(g: &mut Gen) -> Self {
        if g.small(3) == 0 {
            None
        } else {
            Some(T::arbitrary(g))
        }
    }
}

/// encode → decode → encode: the bytes must match and the decoded value must
/// survive a second trip unchanged, and decoding must consume every byte.
pub fn roundtrip<T>(g: &mut Gen, version: i16) -> Result<(), String>
where
    T: Arbitrary + Encode + Decode + PartialEq + std::fmt::Debug,
{
    let value = T::arbitrary(g);
    let mut first = BytesMut::new();
    value
        .encode(&mut first, version)
        .map_err(|e| format!("encode: {e}"))?;
    let first = first.freeze();
    let mut rd = first.clone();
    let decoded = T::decode(&mut rd, version).map_err(|e| format!("decode: {e} of {value:?}"))?;
    if !rd.is_empty() {
        return Err(format!(
            "{} trailing bytes after decode of {value:?}",
            rd.len()
        ));
    }
    let mut second = BytesMut::new();
    decoded
        .encode(&mut second, version)
        .map_err(|e| format!("re-encode: {e}"))?;
    if first != second.freeze() {
        return Err(format!("re-encoding differs for {value:?} -> {decoded:?}"));
    }
    let mut rd = first.clone();
    let again = T::decode(&mut rd, version).map_err(|e| format!("second decode: {e}"))?;
    if again != decoded {
        return Err(format!("second decode differs: {decoded:?} vs {again:?}"));
    }
    Ok(())
}

/// A type-erased [`roundtrip`] for one message type.
pub type RoundtripFn = fn(&mut Gen, i16) -> Result<(), String>;
