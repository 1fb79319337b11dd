//! The little CBOR (RFC 8949) that WebAuthn needs: the attestation object and COSE keys.
//! Definite lengths only, nesting bounded, every length checked against the input before use,
//! so a hostile browser cannot make it allocate or recurse without bound.

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Uint(u64),
    /// A negative integer: the value is `-1 - n`.
    Neg(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Bool(bool),
    Null,
    /// Floats and other simple values: kept only so that they can be skipped.
    Other,
}

impl Value {
    /// The entry of a map under integer key `k` (COSE keys use small integers).
    pub fn get_int(&self, k: i64) -> Option<&Value> {
        let Value::Map(m) = self else { return None };
        m.iter()
            .find(|(key, _)| key.as_int() == Some(k))
            .map(|(_, v)| v)
    }

    /// The entry of a map under text key `k`.
    pub fn get_text(&self, k: &str) -> Option<&Value> {
        let Value::Map(m) = self else { return None };
        m.iter()
            .find(|(key, _)| matches!(key, Value::Text(t) if t == k))
            .map(|(_, v)| v)
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Uint(n) => i64::try_from(*n).ok(),
            Value::Neg(n) => i64::try_from(*n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CborError {
    #[error("CBOR ends early")]
    Truncated,
    #[error("CBOR nests too deep")]
    TooDeep,
    #[error("CBOR uses a form this server does not accept ({0})")]
    Unsupported(&'static str),
    #[error("CBOR text is not UTF-8")]
    BadText,
}

const MAX_DEPTH: usize = 8;

/// Decodes one item from the start of `input`; returns it and how many bytes it took.
pub fn decode(input: &[u8]) -> Result<(Value, usize), CborError> {
    let mut r = Reader { input, pos: 0 };
    let v = r.item(0)?;
    Ok((v, r.pos))
}

/// Decodes `input`, which must hold exactly one item.
pub fn decode_all(input: &[u8]) -> Result<Value, CborError> {
    let (v, used) = decode(input)?;
    if used != input.len() {
        return Err(CborError::Unsupported("bytes after the item"));
    }
    Ok(v)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CborError> {
        let end = self.pos.checked_add(n).ok_or(CborError::Truncated)?;
        let s = self.input.get(self.pos..end).ok_or(CborError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn argument(&mut self, info: u8) -> Result<u64, CborError> {
        Ok(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(
                self.take(2)?.try_into().unwrap_or([0; 2]),
            )),
            26 => u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().unwrap_or([0; 4]),
            )),
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap_or([0; 8])),
            _ => return Err(CborError::Unsupported("indefinite length")),
        })
    }

    /// A count of items or bytes, which cannot exceed what is left of the input.
    fn length(&mut self, info: u8) -> Result<usize, CborError> {
        let n = self.argument(info)?;
        let left = (self.input.len() - self.pos) as u64;
        if n > left {
            return Err(CborError::Truncated);
        }
        Ok(n as usize)
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::TooDeep);
        }
        let head = self.take(1)?[0];
        let (major, info) = (head >> 5, head & 0x1f);
        Ok(match major {
            0 => Value::Uint(self.argument(info)?),
            1 => Value::Neg(self.argument(info)?),
            2 => {
                let n = self.length(info)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            3 => {
                let n = self.length(info)?;
                let s = std::str::from_utf8(self.take(n)?).map_err(|_| CborError::BadText)?;
                Value::Text(s.to_owned())
            }
            4 => {
                let n = self.length(info)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.item(depth + 1)?);
                }
                Value::Array(v)
            }
            5 => {
                let n = self.length(info)?;
                let mut m = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.item(depth + 1)?;
                    let v = self.item(depth + 1)?;
                    m.push((k, v));
                }
                Value::Map(m)
            }
            6 => return Err(CborError::Unsupported("tags")),
            _ => match info {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 => Value::Null,
                25 => {
                    self.take(2)?;
                    Value::Other
                }
                26 => {
                    self.take(4)?;
                    Value::Other
                }
                27 => {
                    self.take(8)?;
                    Value::Other
                }
                0..=19 | 23 => Value::Other,
                24 => {
                    self.take(1)?;
                    Value::Other
                }
                _ => return Err(CborError::Unsupported("break")),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8949_examples() {
        assert_eq!(decode_all(&[0x00]).unwrap(), Value::Uint(0));
        assert_eq!(decode_all(&[0x18, 0x64]).unwrap(), Value::Uint(100));
        assert_eq!(decode_all(&[0x20]).unwrap().as_int(), Some(-1));
        assert_eq!(decode_all(&[0x38, 0x63]).unwrap().as_int(), Some(-100));
        assert_eq!(
            decode_all(&[0x39, 0x01, 0x00]).unwrap().as_int(),
            Some(-257)
        );
        assert_eq!(
            decode_all(&[0x44, 1, 2, 3, 4]).unwrap(),
            Value::Bytes(vec![1, 2, 3, 4])
        );
        assert_eq!(
            decode_all(&[0x62, 0x61, 0x62]).unwrap(),
            Value::Text("ab".into())
        );
        let m = decode_all(&[0xa2, 0x01, 0x02, 0x63, b'f', b'm', b't', 0xf6]).unwrap();
        assert_eq!(m.get_int(1), Some(&Value::Uint(2)));
        assert_eq!(m.get_text("fmt"), Some(&Value::Null));
    }

    #[test]
    fn hostile_input_is_refused_without_allocating() {
        // A byte string claiming 4 GiB, an array claiming 2^64 items, deep nesting.
        assert_eq!(
            decode(&[0x5a, 0xff, 0xff, 0xff, 0xff]),
            Err(CborError::Truncated)
        );
        assert_eq!(
            decode(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(CborError::Truncated)
        );
        assert_eq!(decode(&[0x81; 64]), Err(CborError::TooDeep));
        assert_eq!(
            decode(&[0x5f]),
            Err(CborError::Unsupported("indefinite length"))
        );
        assert_eq!(decode(&[]), Err(CborError::Truncated));
        assert_eq!(decode(&[0x62, 0xff, 0xfe]), Err(CborError::BadText));
        assert!(decode_all(&[0x00, 0x00]).is_err());
        // decode() reports how much it used, for the COSE key inside authenticator data.
        assert_eq!(decode(&[0x01, 0xaa]).unwrap(), (Value::Uint(1), 1));
    }
}
