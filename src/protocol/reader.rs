//! A bounded, zero-copy reader over one request body, and the `DecodeError` every decoder returns.
//!
//! Owns: the Kafka primitive types (big-endian integers, varints, UUIDs, classic and compact strings, bytes and
//! arrays, tagged fields) and the checks that make them safe on untrusted input.
//! Never: a panic, an allocation sized by a wire count that was not checked against the bytes remaining and a
//! `*_MAX` limit, or a loop whose bound comes from the wire unchecked. Byte fields are `Bytes` slices of the
//! input (no copy); only strings are copied, to validate UTF-8 once.

use bytes::{Buf, Bytes};

use super::{BYTES_FIELD_BYTES_MAX, STRING_BYTES_MAX, TAGGED_FIELDS_MAX};

/// Why a request could not be decoded. Any of these closes the connection: the stream can no longer be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before a field, or a length or count claims more than the bytes left.
    #[error("truncated: {needed} bytes needed, {remaining} remaining")]
    Truncated { needed: usize, remaining: usize },
    /// A length or count passed the bytes remaining but not its named limit.
    #[error("{what} length {length} exceeds the limit {max}")]
    LengthTooLarge {
        what: &'static str,
        length: usize,
        max: usize,
    },
    /// A classic length below -1 (only -1 means null).
    #[error("negative length {length}")]
    NegativeLength { length: i32 },
    /// A null string, bytes or array where the version requires a value.
    #[error("null {what} where the protocol requires a value")]
    UnexpectedNull { what: &'static str },
    /// A string field that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidString,
    /// A varint longer than its type allows (5 bytes for 32 bits, 10 for 64 bits).
    #[error("varint is too long")]
    VarintTooLong,
    /// A request header whose key and version we cannot frame.
    #[error("api key {api_key} version {version} is not supported")]
    UnsupportedVersion { api_key: i16, version: i16 },
}

/// Reads Kafka primitives from the front of a `Bytes`, consuming what it reads.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The unconsumed bytes, without copying.
    pub fn into_remaining(self) -> Bytes {
        self.buf
    }

    /// Consumes `length` bytes and returns them as a slice of the input, without copying.
    pub fn bytes_exact(&mut self, length: usize) -> Result<Bytes, DecodeError> {
        self.ensure(length)?;
        Ok(self.buf.split_to(length))
    }

    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.fixed::<1>()?))
    }

    /// Kafka booleans are one byte; like the Java client, any non-zero value is true.
    pub fn boolean(&mut self) -> Result<bool, DecodeError> {
        Ok(self.i8()? != 0)
    }

    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.fixed::<2>()?))
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.fixed::<4>()?))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.fixed::<8>()?))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.fixed::<4>()?))
    }

    pub fn uuid(&mut self) -> Result<[u8; 16], DecodeError> {
        self.fixed::<16>()
    }

    /// An unsigned LEB128 varint of at most 5 bytes whose value fits 32 bits.
    pub fn unsigned_varint(&mut self) -> Result<u32, DecodeError> {
        let value = self.unsigned_varlong_bounded(5)?;
        u32::try_from(value).map_err(|_| DecodeError::VarintTooLong)
    }

    /// A zigzag-encoded signed varint (record fields).
    pub fn varint(&mut self) -> Result<i32, DecodeError> {
        let zigzag = self.unsigned_varint()?;
        Ok(((zigzag >> 1) as i32) ^ -((zigzag & 1) as i32))
    }

    /// A zigzag-encoded signed varlong of at most 10 bytes (record fields).
    pub fn varlong(&mut self) -> Result<i64, DecodeError> {
        let zigzag = self.unsigned_varlong_bounded(10)?;
        Ok(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64))
    }

    /// A non-nullable string: int16 length (classic) or unsigned varint length + 1 (compact, when `flexible`).
    pub fn string(&mut self, flexible: bool) -> Result<String, DecodeError> {
        self.nullable_string(flexible)?
            .ok_or(DecodeError::UnexpectedNull { what: "string" })
    }

    /// A nullable string: length -1 (classic) or 0 (compact) is null.
    pub fn nullable_string(&mut self, flexible: bool) -> Result<Option<String>, DecodeError> {
        let length = if flexible {
            self.compact_length()?
        } else {
            classic_length(i32::from(self.i16()?))?
        };
        let Some(length) = length else {
            return Ok(None);
        };
        check_limit("string", length, STRING_BYTES_MAX)?;
        let raw = self.bytes_exact(length)?;
        match std::str::from_utf8(&raw) {
            Ok(text) => Ok(Some(text.to_owned())),
            Err(_) => Err(DecodeError::InvalidString),
        }
    }

    /// A non-nullable bytes field: int32 length (classic) or unsigned varint length + 1 (compact).
    pub fn bytes(&mut self, flexible: bool) -> Result<Bytes, DecodeError> {
        self.nullable_bytes(flexible)?
            .ok_or(DecodeError::UnexpectedNull { what: "bytes" })
    }

    /// A nullable bytes field, returned as a slice of the input without copying.
    pub fn nullable_bytes(&mut self, flexible: bool) -> Result<Option<Bytes>, DecodeError> {
        let length = if flexible {
            self.compact_length()?
        } else {
            classic_length(self.i32()?)?
        };
        let Some(length) = length else {
            return Ok(None);
        };
        check_limit("bytes", length, BYTES_FIELD_BYTES_MAX)?;
        self.bytes_exact(length).map(Some)
    }

    /// A non-nullable array's element count, checked against `max` and against the bytes remaining: every element
    /// takes at least one byte, so a larger count is a lie and must not size an allocation.
    pub fn array_len(&mut self, flexible: bool, max: usize) -> Result<usize, DecodeError> {
        self.nullable_array_len(flexible, max)?
            .ok_or(DecodeError::UnexpectedNull { what: "array" })
    }

    /// A nullable array's element count (`None` = null), checked like `array_len`.
    pub fn nullable_array_len(
        &mut self,
        flexible: bool,
        max: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let count = if flexible {
            self.compact_length()?
        } else {
            classic_length(self.i32()?)?
        };
        let Some(count) = count else { return Ok(None) };
        check_limit("array", count, max)?;
        self.ensure(count)?;
        Ok(Some(count))
    }

    /// A non-nullable array, each element read by `element`.
    pub fn array<T>(
        &mut self,
        flexible: bool,
        max: usize,
        element: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.array_len(flexible, max)?;
        self.elements(count, element)
    }

    /// A nullable array (`None` = null), each element read by `element`.
    pub fn nullable_array<T>(
        &mut self,
        flexible: bool,
        max: usize,
        element: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
    ) -> Result<Option<Vec<T>>, DecodeError> {
        match self.nullable_array_len(flexible, max)? {
            Some(count) => self.elements(count, element).map(Some),
            None => Ok(None),
        }
    }

    /// Skips a tagged-field section: a count, then (tag, size, value) per field.
    pub fn skip_tagged_fields(&mut self) -> Result<(), DecodeError> {
        let count = self.unsigned_varint()? as usize;
        check_limit("tagged fields", count, TAGGED_FIELDS_MAX)?;
        // Every tagged field takes at least two bytes (tag and size).
        self.ensure(count.saturating_mul(2))?;
        for _ in 0..count {
            let _tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()? as usize;
            check_limit("tagged field", size, BYTES_FIELD_BYTES_MAX)?;
            self.ensure(size)?;
            self.buf.advance(size);
        }
        Ok(())
    }

    fn elements<T>(
        &mut self,
        count: usize,
        mut element: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        // The caller checked `count` against a limit and the bytes remaining, so this capacity is bounded.
        let mut elements = Vec::with_capacity(count);
        for _ in 0..count {
            elements.push(element(self)?);
        }
        Ok(elements)
    }

    /// Compact lengths are unsigned varints holding length + 1, with 0 meaning null.
    fn compact_length(&mut self) -> Result<Option<usize>, DecodeError> {
        match self.unsigned_varint()? {
            0 => Ok(None),
            length_plus_one => Ok(Some(length_plus_one as usize - 1)),
        }
    }

    fn unsigned_varlong_bounded(&mut self, bytes_max: u32) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for index in 0..bytes_max {
            let [byte] = self.fixed::<1>()?;
            let shift = 7 * index;
            let bits = u64::from(byte & 0x7f);
            // The last byte may only hold the bits that still fit in 64 bits.
            if shift == 63 && bits > 1 {
                return Err(DecodeError::VarintTooLong);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let Some(source) = self.buf.first_chunk::<N>() else {
            return Err(self.truncated(N));
        };
        let value = *source;
        self.buf.advance(N);
        Ok(value)
    }

    fn ensure(&self, needed: usize) -> Result<(), DecodeError> {
        if needed <= self.buf.len() {
            Ok(())
        } else {
            Err(self.truncated(needed))
        }
    }

    fn truncated(&self, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            needed,
            remaining: self.buf.len(),
        }
    }
}

/// Classic lengths are signed: -1 is null, anything lower is malformed.
fn classic_length(length: i32) -> Result<Option<usize>, DecodeError> {
    match length {
        -1 => Ok(None),
        length if length < -1 => Err(DecodeError::NegativeLength { length }),
        length => Ok(Some(length as usize)),
    }
}

fn check_limit(what: &'static str, length: usize, max: usize) -> Result<(), DecodeError> {
    if length <= max {
        Ok(())
    } else {
        Err(DecodeError::LengthTooLarge { what, length, max })
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn reader(bytes: &'static [u8]) -> Reader {
        Reader::new(Bytes::from_static(bytes))
    }

    #[test]
    fn integers_are_big_endian() {
        let mut source = reader(&[
            0xfe, 0x01, 0x02, 0x80, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 7, 2,
        ]);
        assert_eq!(source.i8(), Ok(-2));
        assert_eq!(source.i16(), Ok(0x0102));
        assert_eq!(source.i32(), Ok(i32::MIN + 1));
        assert_eq!(source.u32(), Ok(0xff_ff_ff_ff));
        assert_eq!(source.i64(), Ok(7));
        assert_eq!(source.boolean(), Ok(true));
        assert_eq!(source.remaining(), 0);
        assert_eq!(
            source.i8(),
            Err(DecodeError::Truncated {
                needed: 1,
                remaining: 0
            })
        );
    }

    /// Reference LEB128 encoder (the oracle's varint encoder is private).
    fn leb128(mut value: u64) -> Bytes {
        let mut encoded = Vec::new();
        while value >= 0x80 {
            encoded.push((value as u8) | 0x80);
            value >>= 7;
        }
        encoded.push(value as u8);
        Bytes::from(encoded)
    }

    #[test]
    fn varints_round_trip() {
        assert_eq!(reader(&[0xac, 0x02]).unsigned_varint(), Ok(300));
        assert_eq!(
            reader(&[0xff, 0xff, 0xff, 0xff, 0x0f]).unsigned_varint(),
            Ok(u32::MAX)
        );
        assert_eq!(
            reader(&[0xff, 0xff, 0xff, 0xff, 0x0f]).varint(),
            Ok(i32::MIN)
        );
        assert_eq!(reader(&[0x01]).varint(), Ok(-1));
        for value in [0u32, 1, 127, 128, 16_383, 16_384, u32::MAX / 2, u32::MAX] {
            assert_eq!(
                Reader::new(leb128(u64::from(value))).unsigned_varint(),
                Ok(value)
            );
        }
        for value in [0i32, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let zigzag = ((value << 1) ^ (value >> 31)) as u32;
            assert_eq!(Reader::new(leb128(u64::from(zigzag))).varint(), Ok(value));
        }
        for value in [0i64, -1, 1 << 40, -(1 << 40), i64::MAX, i64::MIN] {
            let zigzag = ((value << 1) ^ (value >> 63)) as u64;
            assert_eq!(Reader::new(leb128(zigzag)).varlong(), Ok(value));
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        assert_eq!(
            reader(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).unsigned_varint(),
            Err(DecodeError::VarintTooLong)
        );
        // Five bytes whose value needs 35 bits.
        assert_eq!(
            reader(&[0xff, 0xff, 0xff, 0xff, 0x1f]).unsigned_varint(),
            Err(DecodeError::VarintTooLong)
        );
        let ten_bytes_overflowing = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            Reader::new(Bytes::copy_from_slice(&ten_bytes_overflowing)).varlong(),
            Err(DecodeError::VarintTooLong)
        );
        assert!(matches!(
            reader(&[0x80, 0x80]).unsigned_varint(),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn strings_classic_and_compact() {
        assert_eq!(
            reader(&[0, 3, b'a', b'b', b'c']).string(false),
            Ok("abc".to_owned())
        );
        assert_eq!(
            reader(&[4, b'a', b'b', b'c']).string(true),
            Ok("abc".to_owned())
        );
        assert_eq!(reader(&[0xff, 0xff]).nullable_string(false), Ok(None));
        assert_eq!(reader(&[0]).nullable_string(true), Ok(None));
        assert_eq!(reader(&[1]).nullable_string(true), Ok(Some(String::new())));
        assert_eq!(
            reader(&[0xff, 0xff]).string(false),
            Err(DecodeError::UnexpectedNull { what: "string" })
        );
        assert_eq!(
            reader(&[0xff, 0xfe]).nullable_string(false),
            Err(DecodeError::NegativeLength { length: -2 })
        );
        assert_eq!(
            reader(&[0, 2, 0xc3, 0x28]).string(false),
            Err(DecodeError::InvalidString)
        );
        assert!(matches!(
            reader(&[0, 9, b'a']).string(false),
            Err(DecodeError::Truncated { .. })
        ));
        // Compact length 40_000 (+1) passes the varint but not STRING_BYTES_MAX.
        let too_long = reader(&[0xc1, 0xb8, 0x02]).string(true);
        assert_eq!(
            too_long,
            Err(DecodeError::LengthTooLarge {
                what: "string",
                length: 40_000,
                max: STRING_BYTES_MAX
            })
        );
    }

    #[test]
    fn bytes_are_zero_copy_slices() {
        let source = Bytes::from_static(&[0, 0, 0, 3, 7, 8, 9, 0xff, 0xff, 0xff, 0xff, 0]);
        let mut input = Reader::new(source.clone());
        let value = input
            .nullable_bytes(false)
            .expect("decodes")
            .expect("not null");
        assert_eq!(value.as_ref(), &[7, 8, 9]);
        assert!(source.as_ptr_range().contains(&value.as_ptr()));
        assert_eq!(input.nullable_bytes(false), Ok(None));
        assert_eq!(input.nullable_bytes(true), Ok(None));
        assert_eq!(
            reader(&[0xff, 0xff, 0xff, 0xff]).bytes(false),
            Err(DecodeError::UnexpectedNull { what: "bytes" })
        );
        assert!(matches!(
            reader(&[0x7f, 0xff, 0xff, 0xff]).bytes(false),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        assert!(matches!(
            reader(&[0, 0, 1, 0, 1]).bytes(false),
            Err(DecodeError::Truncated { needed: 256, .. })
        ));
    }

    #[test]
    fn array_counts_are_bounded_by_limit_and_remaining() {
        assert_eq!(reader(&[0, 0, 0, 2, 1, 2]).array_len(false, 2), Ok(2));
        assert_eq!(reader(&[3, 1, 2]).array_len(true, 2), Ok(2));
        let over_limit = reader(&[0, 0, 0, 3, 1, 2, 3]).array_len(false, 2);
        assert_eq!(
            over_limit,
            Err(DecodeError::LengthTooLarge {
                what: "array",
                length: 3,
                max: 2
            })
        );
        let over_remaining = reader(&[0, 0, 0, 3, 1, 2]).array_len(false, 10);
        assert_eq!(
            over_remaining,
            Err(DecodeError::Truncated {
                needed: 3,
                remaining: 2
            })
        );
        assert_eq!(
            reader(&[0xff, 0xff, 0xff, 0xff]).nullable_array_len(false, 1),
            Ok(None)
        );
        assert_eq!(reader(&[0]).nullable_array_len(true, 1), Ok(None));
        assert_eq!(
            reader(&[0]).array_len(true, 1),
            Err(DecodeError::UnexpectedNull { what: "array" })
        );
        let elements = reader(&[0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 6]).array(false, 4, Reader::i32);
        assert_eq!(elements, Ok(vec![5, 6]));
    }

    #[test]
    fn tagged_fields_are_skipped_within_bounds() {
        let mut source = reader(&[2, 0, 3, b'a', b'b', b'c', 5, 0, 0x2a]);
        assert_eq!(source.skip_tagged_fields(), Ok(()));
        assert_eq!(source.remaining(), 1);
        let too_many = reader(&[0xff, 0x01]).skip_tagged_fields();
        assert!(matches!(
            too_many,
            Err(DecodeError::LengthTooLarge {
                what: "tagged fields",
                ..
            })
        ));
        let oversized = reader(&[1, 0, 9, b'a']).skip_tagged_fields();
        assert_eq!(
            oversized,
            Err(DecodeError::Truncated {
                needed: 9,
                remaining: 1
            })
        );
    }
}
