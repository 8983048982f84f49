//! SV2 data types ([spec 3.1](https://github.com/stratum-mining/sv2-spec/blob/main/03-Protocol-Overview.md#31-data-types-mapping))
//! and the [`Encode`] / [`Decode`] traits every message is built from.
//!
//! | SV2 type        | Rust type                          |
//! |-----------------|------------------------------------|
//! | BOOL            | `bool` (only the low bit is read)  |
//! | U8 U16 U32 U64  | `u8` `u16` `u32` `u64`             |
//! | U24             | [`U24`]                            |
//! | U256            | [`U256`]                           |
//! | F32             | `f32` (IEEE-754 binary32, LE)      |
//! | STR0_255        | [`Str0_255`]                       |
//! | B0_32           | [`B0_32`] (inline, no allocation)  |
//! | B0_255 B0_64K B0_16M | [`B0_255`] [`B0_64K`] [`B0_16M`] (one generic [`LenBytes`]) |
//! | PUBKEY          | [`PubKey`]                         |
//! | SIGNATURE       | [`Signature`]                      |
//! | OPTION\[T\]     | `Option<T>` (a SEQ0_1)             |
//! | SEQ0_255\[T\] SEQ0_64K\[T\] | [`Seq0_255`] [`Seq0_64K`] (one generic [`Seq`]) |
//!
//! Decoding is single-pass over a [`Reader`] on a borrowed slice; lengths are checked before
//! anything is allocated. Encoding is infallible: every length was checked when the value was
//! built.

use crate::error::{DecodeError, LengthError};
use bytes::{BufMut, Bytes};
use std::fmt;

/// A cursor over a borrowed input slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Read from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The bytes not read yet, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Take the next `n` bytes.
    #[inline]
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                field,
                needed: n - self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Take the next `N` bytes as an array.
    #[inline]
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// Fail if any byte is left; `what` names the value that should have ended here.
    pub fn finish(self, what: &'static str) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                field: what,
                trailing: self.buf.len(),
            })
        }
    }
}

/// A value with an SV2 wire encoding.
pub trait Encode {
    /// Exact number of bytes [`Encode::encode`] writes.
    fn encoded_len(&self) -> usize;
    /// Append the encoding to `buf`. Infallible: lengths were checked when the value was built.
    fn encode<B: BufMut>(&self, buf: &mut B);

    /// Encode into a fresh vector (convenience for tests and tools; hot paths reuse a buffer).
    fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode(&mut v);
        v
    }
}

/// A value that can be read from its SV2 wire encoding.
pub trait Decode: Sized {
    /// Read one value from the reader, leaving the reader after it.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decode a value that must use all of `buf` (trailing bytes are an error).
    fn from_bytes(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let v = Self::decode(&mut r)?;
        r.finish(std::any::type_name::<Self>())?;
        Ok(v)
    }
}

macro_rules! int_impl {
    ($t:ty, $n:expr) => {
        impl Encode for $t {
            #[inline]
            fn encoded_len(&self) -> usize {
                $n
            }
            #[inline]
            fn encode<B: BufMut>(&self, buf: &mut B) {
                buf.put_slice(&self.to_le_bytes());
            }
        }
        impl Decode for $t {
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$t>::from_le_bytes(r.array::<$n>(stringify!($t))?))
            }
        }
    };
}
int_impl!(u8, 1);
int_impl!(u16, 2);
int_impl!(u32, 4);
int_impl!(u64, 8);
int_impl!(f32, 4);

impl Encode for bool {
    #[inline]
    fn encoded_len(&self) -> usize {
        1
    }
    #[inline]
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u8(u8::from(*self));
    }
}

impl Decode for bool {
    /// Only the least significant bit carries meaning (spec 3.1); the others are ignored.
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.array::<1>("BOOL")?[0] & 1 == 1)
    }
}

/// U24: unsigned 24-bit little-endian integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct U24(u32);

impl U24 {
    /// Largest U24.
    pub const MAX: u32 = 0x00ff_ffff;

    /// Build a U24, or fail if `v` needs more than 24 bits.
    pub fn new(v: u32) -> Result<Self, LengthError> {
        if v > Self::MAX {
            Err(LengthError {
                kind: "U24",
                len: v as usize,
                max: Self::MAX as usize,
            })
        } else {
            Ok(U24(v))
        }
    }

    /// The value.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Encode for U24 {
    fn encoded_len(&self) -> usize {
        3
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(&self.0.to_le_bytes()[..3]);
    }
}

impl Decode for U24 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let b = r.array::<3>("U24")?;
        Ok(U24(u32::from_le_bytes([b[0], b[1], b[2], 0])))
    }
}

/// A fixed-size byte string (U256, PUBKEY, SIGNATURE), printed as hex.
macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $n:expr, $label:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $n]);

        impl Default for $name {
            fn default() -> Self {
                $name([0u8; $n])
            }
        }

        impl $name {
            /// The bytes, as they are on the wire.
            pub fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }
        }

        impl From<[u8; $n]> for $name {
            fn from(b: [u8; $n]) -> Self {
                $name(b)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                write!(f, ")")
            }
        }

        impl Encode for $name {
            #[inline]
            fn encoded_len(&self) -> usize {
                $n
            }
            #[inline]
            fn encode<B: BufMut>(&self, buf: &mut B) {
                buf.put_slice(&self.0);
            }
        }

        impl Decode for $name {
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($name(r.array::<$n>($label)?))
            }
        }

        #[cfg(feature = "proptest")]
        impl proptest::arbitrary::Arbitrary for $name {
            type Parameters = ();
            type Strategy = proptest::strategy::BoxedStrategy<Self>;
            fn arbitrary_with(_: ()) -> Self::Strategy {
                use proptest::strategy::Strategy;
                proptest::collection::vec(proptest::arbitrary::any::<u8>(), $n)
                    .prop_map(|v| {
                        let mut a = [0u8; $n];
                        a.copy_from_slice(&v);
                        $name(a)
                    })
                    .boxed()
            }
        }
    };
}

fixed_bytes!(
    /// U256: 32 bytes, little-endian (often a SHA-256 output read as a number: hashes,
    /// targets).
    U256,
    32,
    "U256"
);
fixed_bytes!(
    /// PUBKEY: the x coordinate of a secp256k1 public key (BIP340).
    PubKey,
    32,
    "PUBKEY"
);
fixed_bytes!(
    /// SIGNATURE: a BIP340 Schnorr signature.
    Signature,
    64,
    "SIGNATURE"
);

/// B0_32: up to 32 bytes with a 1-byte length prefix, stored inline so that messages carrying
/// one (extranonces in SubmitSharesExtended, ...) decode without allocating.
#[derive(Clone, Copy, Default)]
pub struct B0_32 {
    len: u8,
    buf: [u8; 32],
}

impl B0_32 {
    /// Largest length.
    pub const MAX: usize = 32;

    /// Copy `b` in, or fail if it is longer than 32 bytes.
    pub fn new(b: &[u8]) -> Result<Self, LengthError> {
        if b.len() > Self::MAX {
            return Err(LengthError {
                kind: "B0_32",
                len: b.len(),
                max: Self::MAX,
            });
        }
        let mut buf = [0u8; 32];
        buf[..b.len()].copy_from_slice(b);
        Ok(B0_32 {
            len: b.len() as u8,
            buf,
        })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl PartialEq for B0_32 {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}
impl Eq for B0_32 {}

impl std::hash::Hash for B0_32 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl fmt::Debug for B0_32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "B0_32(")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl AsRef<[u8]> for B0_32 {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl TryFrom<&[u8]> for B0_32 {
    type Error = LengthError;
    fn try_from(b: &[u8]) -> Result<Self, LengthError> {
        B0_32::new(b)
    }
}

impl Encode for B0_32 {
    #[inline]
    fn encoded_len(&self) -> usize {
        1 + self.len as usize
    }
    #[inline]
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u8(self.len);
        buf.put_slice(self.as_slice());
    }
}

impl Decode for B0_32 {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.array::<1>("B0_32")?[0] as usize;
        if len > Self::MAX {
            return Err(DecodeError::LengthOutOfRange {
                field: "B0_32",
                len,
                max: Self::MAX,
            });
        }
        let b = r.take(len, "B0_32")?;
        let mut buf = [0u8; 32];
        buf[..len].copy_from_slice(b);
        Ok(B0_32 {
            len: len as u8,
            buf,
        })
    }
}

#[cfg(feature = "proptest")]
impl proptest::arbitrary::Arbitrary for B0_32 {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::strategy::Strategy;
        proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..=32)
            .prop_map(|v| B0_32::new(&v).expect("length in range"))
            .boxed()
    }
}

fn read_prefix(
    r: &mut Reader<'_>,
    width: usize,
    field: &'static str,
) -> Result<usize, DecodeError> {
    let b = r.take(width, field)?;
    let mut le = [0u8; 4];
    le[..width].copy_from_slice(b);
    Ok(u32::from_le_bytes(le) as usize)
}

fn write_prefix<B: BufMut>(buf: &mut B, width: usize, len: usize) {
    buf.put_slice(&(len as u32).to_le_bytes()[..width]);
}

/// A byte string with a `PREFIX`-byte little-endian length prefix and at most `MAX` bytes:
/// B0_255, B0_64K and B0_16M are this type with different parameters.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct LenBytes<const PREFIX: usize, const MAX: usize>(Bytes);

/// B0_255: up to 255 bytes, 1-byte length.
pub type B0_255 = LenBytes<1, 255>;
/// B0_64K: up to 65535 bytes, 2-byte length.
pub type B0_64K = LenBytes<2, 65_535>;
/// B0_16M: up to 2^24-1 bytes, 3-byte (U24) length.
pub type B0_16M = LenBytes<3, 16_777_215>;

impl<const PREFIX: usize, const MAX: usize> LenBytes<PREFIX, MAX> {
    /// Largest length.
    pub const MAX: usize = MAX;

    const NAME: &'static str = match PREFIX {
        1 => "B0_255",
        2 => "B0_64K",
        _ => "B0_16M",
    };

    /// Wrap `b`, or fail if it is longer than `MAX`.
    pub fn new(b: impl Into<Bytes>) -> Result<Self, LengthError> {
        let b = b.into();
        if b.len() > MAX {
            return Err(LengthError {
                kind: Self::NAME,
                len: b.len(),
                max: MAX,
            });
        }
        Ok(LenBytes(b))
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, as a cheaply clonable `Bytes`.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Take the bytes out.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl<const PREFIX: usize, const MAX: usize> AsRef<[u8]> for LenBytes<PREFIX, MAX> {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl<const PREFIX: usize, const MAX: usize> TryFrom<Vec<u8>> for LenBytes<PREFIX, MAX> {
    type Error = LengthError;
    fn try_from(v: Vec<u8>) -> Result<Self, LengthError> {
        Self::new(v)
    }
}

impl<const PREFIX: usize, const MAX: usize> TryFrom<&[u8]> for LenBytes<PREFIX, MAX> {
    type Error = LengthError;
    fn try_from(v: &[u8]) -> Result<Self, LengthError> {
        Self::new(Bytes::copy_from_slice(v))
    }
}

impl<const PREFIX: usize, const MAX: usize> fmt::Debug for LenBytes<PREFIX, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", Self::NAME)?;
        for b in self.0.iter() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl<const PREFIX: usize, const MAX: usize> Encode for LenBytes<PREFIX, MAX> {
    fn encoded_len(&self) -> usize {
        PREFIX + self.0.len()
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        write_prefix(buf, PREFIX, self.0.len());
        buf.put_slice(&self.0);
    }
}

impl<const PREFIX: usize, const MAX: usize> Decode for LenBytes<PREFIX, MAX> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = read_prefix(r, PREFIX, Self::NAME)?;
        if len > MAX {
            return Err(DecodeError::LengthOutOfRange {
                field: Self::NAME,
                len,
                max: MAX,
            });
        }
        Ok(LenBytes(Bytes::copy_from_slice(r.take(len, Self::NAME)?)))
    }
}

#[cfg(feature = "proptest")]
impl<const PREFIX: usize, const MAX: usize> proptest::arbitrary::Arbitrary
    for LenBytes<PREFIX, MAX>
{
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::strategy::Strategy;
        // Mostly short values; sometimes the largest allowed (up to 64K, to keep tests fast).
        let cap = MAX.min(70_000);
        proptest::prop_oneof![
            8 => proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..=MAX.min(80)),
            1 => proptest::collection::vec(proptest::arbitrary::any::<u8>(), cap..=cap),
        ]
        .prop_map(|v| LenBytes::new(v).expect("length in range"))
        .boxed()
    }
}

/// STR0_255: a UTF-8 string of at most 255 bytes with a 1-byte length prefix.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Str0_255(String);

impl Str0_255 {
    /// Largest length in bytes.
    pub const MAX: usize = 255;

    /// Wrap `s`, or fail if it is longer than 255 bytes.
    pub fn new(s: impl Into<String>) -> Result<Self, LengthError> {
        let s = s.into();
        if s.len() > Self::MAX {
            return Err(LengthError {
                kind: "STR0_255",
                len: s.len(),
                max: Self::MAX,
            });
        }
        Ok(Str0_255(s))
    }

    /// `s`, cut to its longest prefix of at most 255 bytes that ends on a character
    /// boundary (error codes and reasons from any text).
    pub fn truncated(s: &str) -> Self {
        let mut end = s.len().min(Self::MAX);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Str0_255(s[..end].to_owned())
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Str0_255 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Str0_255 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for Str0_255 {
    type Error = LengthError;
    fn try_from(s: &str) -> Result<Self, LengthError> {
        Str0_255::new(s)
    }
}

impl TryFrom<String> for Str0_255 {
    type Error = LengthError;
    fn try_from(s: String) -> Result<Self, LengthError> {
        Str0_255::new(s)
    }
}

impl Encode for Str0_255 {
    fn encoded_len(&self) -> usize {
        1 + self.0.len()
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u8(self.0.len() as u8);
        buf.put_slice(self.0.as_bytes());
    }
}

impl Decode for Str0_255 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.array::<1>("STR0_255")?[0] as usize;
        let b = r.take(len, "STR0_255")?;
        let s =
            std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8 { field: "STR0_255" })?;
        Ok(Str0_255(s.to_owned()))
    }
}

#[cfg(feature = "proptest")]
impl proptest::arbitrary::Arbitrary for Str0_255 {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::strategy::Strategy;
        "\\PC{0,40}"
            .prop_map(|s: String| {
                let mut s = s;
                while s.len() > 255 {
                    s.pop();
                }
                Str0_255(s)
            })
            .boxed()
    }
}

/// A sequence of `T` with a `PREFIX`-byte element count and at most `MAX` elements:
/// SEQ0_255 and SEQ0_64K are this type with different parameters.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Seq<T, const PREFIX: usize, const MAX: usize>(Vec<T>);

/// SEQ0_255\[T\]: up to 255 elements, 1-byte count.
pub type Seq0_255<T> = Seq<T, 1, 255>;
/// SEQ0_64K\[T\]: up to 65535 elements, 2-byte count.
pub type Seq0_64K<T> = Seq<T, 2, 65_535>;

impl<T, const PREFIX: usize, const MAX: usize> Seq<T, PREFIX, MAX> {
    /// Largest element count.
    pub const MAX: usize = MAX;

    const NAME: &'static str = match PREFIX {
        1 => "SEQ0_255",
        _ => "SEQ0_64K",
    };

    /// Wrap `v`, or fail if it has more than `MAX` elements.
    pub fn new(v: Vec<T>) -> Result<Self, LengthError> {
        if v.len() > MAX {
            return Err(LengthError {
                kind: Self::NAME,
                len: v.len(),
                max: MAX,
            });
        }
        Ok(Seq(v))
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// Take the elements out.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no element.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterate over the elements.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<T, const PREFIX: usize, const MAX: usize> std::ops::Deref for Seq<T, PREFIX, MAX> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T, const PREFIX: usize, const MAX: usize> TryFrom<Vec<T>> for Seq<T, PREFIX, MAX> {
    type Error = LengthError;
    fn try_from(v: Vec<T>) -> Result<Self, LengthError> {
        Self::new(v)
    }
}

impl<T: fmt::Debug, const PREFIX: usize, const MAX: usize> fmt::Debug for Seq<T, PREFIX, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl<T: Encode, const PREFIX: usize, const MAX: usize> Encode for Seq<T, PREFIX, MAX> {
    fn encoded_len(&self) -> usize {
        PREFIX + self.0.iter().map(Encode::encoded_len).sum::<usize>()
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        write_prefix(buf, PREFIX, self.0.len());
        for x in &self.0 {
            x.encode(buf);
        }
    }
}

impl<T: Decode, const PREFIX: usize, const MAX: usize> Decode for Seq<T, PREFIX, MAX> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = read_prefix(r, PREFIX, Self::NAME)?;
        if n > MAX {
            return Err(DecodeError::LengthOutOfRange {
                field: Self::NAME,
                len: n,
                max: MAX,
            });
        }
        // Every element takes at least one byte: never reserve more than the input can hold.
        let mut v = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            v.push(T::decode(r)?);
        }
        Ok(Seq(v))
    }
}

#[cfg(feature = "proptest")]
impl<T: proptest::arbitrary::Arbitrary + 'static, const PREFIX: usize, const MAX: usize>
    proptest::arbitrary::Arbitrary for Seq<T, PREFIX, MAX>
{
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::strategy::Strategy;
        proptest::collection::vec(proptest::arbitrary::any::<T>(), 0..=MAX.min(16))
            .prop_map(|v| Seq(v))
            .boxed()
    }
}

/// OPTION\[T\]: a SEQ0_1, i.e. a 1-byte count of 0 or 1 followed by the element.
impl<T: Encode> Encode for Option<T> {
    fn encoded_len(&self) -> usize {
        1 + self.as_ref().map_or(0, Encode::encoded_len)
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        match self {
            None => buf.put_u8(0),
            Some(x) => {
                buf.put_u8(1);
                x.encode(buf);
            }
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.array::<1>("OPTION")?[0] {
            0 => Ok(None),
            1 => Ok(Some(T::decode(r)?)),
            n => Err(DecodeError::LengthOutOfRange {
                field: "OPTION",
                len: n as usize,
                max: 1,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_are_little_endian() {
        assert_eq!(0x0102u16.to_vec(), [2, 1]);
        assert_eq!(U24::new(0x010203).unwrap().to_vec(), [3, 2, 1]);
        assert_eq!(u32::from_bytes(&[1, 0, 0, 0]).unwrap(), 1);
        assert!(U24::new(1 << 24).is_err());
    }

    #[test]
    fn bool_reads_only_low_bit() {
        assert!(bool::from_bytes(&[0xff]).unwrap());
        assert!(!bool::from_bytes(&[0xfe]).unwrap());
    }

    #[test]
    fn len_bytes_limits() {
        assert!(B0_32::new(&[0; 33]).is_err());
        assert_eq!(
            B0_32::from_bytes(&[33]).unwrap_err(),
            DecodeError::LengthOutOfRange {
                field: "B0_32",
                len: 33,
                max: 32
            }
        );
        assert_eq!(
            B0_255::from_bytes(&[3, 1, 2]).unwrap_err(),
            DecodeError::Truncated {
                field: "B0_255",
                needed: 1
            }
        );
        let b = B0_16M::new(vec![7u8; 70_000]).unwrap();
        let enc = b.to_vec();
        assert_eq!(&enc[..3], &[0x70, 0x11, 0x01]);
        assert_eq!(B0_16M::from_bytes(&enc).unwrap(), b);
        assert!(B0_64K::new(vec![0; 65_536]).is_err());
    }

    #[test]
    fn str_rejects_bad_utf8() {
        assert_eq!(
            Str0_255::from_bytes(&[2, 0xc3, 0x28]).unwrap_err(),
            DecodeError::InvalidUtf8 { field: "STR0_255" }
        );
    }

    #[test]
    fn option_is_seq0_1() {
        assert_eq!(Some(5u32).to_vec(), [1, 5, 0, 0, 0]);
        assert_eq!(None::<u32>.to_vec(), [0]);
        assert!(Option::<u32>::from_bytes(&[2, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn seq_count_cannot_force_a_big_reservation() {
        // Declares 65535 U256 elements but carries none: must fail fast, not reserve 2 MiB.
        let err = Seq0_64K::<U256>::from_bytes(&[0xff, 0xff]).unwrap_err();
        assert!(matches!(err, DecodeError::Truncated { .. }));
    }

    #[test]
    fn trailing_bytes_rejected() {
        assert!(matches!(
            u8::from_bytes(&[1, 2]).unwrap_err(),
            DecodeError::TrailingBytes { trailing: 1, .. }
        ));
    }

    #[test]
    fn truncated_strings_end_on_a_character_boundary() {
        assert_eq!(Str0_255::truncated("ok").as_str(), "ok");
        let long = "é".repeat(200); // 400 bytes
        let cut = Str0_255::truncated(&long);
        assert_eq!(cut.as_str().len(), 254);
        assert_eq!(cut.as_str(), "é".repeat(127));
        assert_eq!(Str0_255::truncated(&"a".repeat(300)).as_str().len(), 255);
    }
}
