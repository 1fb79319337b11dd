//! Length-prefixed frames on the PAM socket: a 4-byte big-endian length, then a JSON payload.
//!
//! The length is checked against [`MAX_FRAME`] *before* anything is allocated, so a hostile or
//! broken peer cannot make either side allocate more than 64 KiB. Buffers that held a frame are
//! zeroized, since frames carry verification codes.
//!
//! The blocking functions here are what `pam_jit` uses (on a socket with read and write timeouts
//! set); jitd reads with tokio and shares [`check_len`] and [`decode`].
//!
//! Errors never repeat what a frame held: a malformed frame may carry a code, and the error text
//! is logged by jitd and sent back to the peer ([`crate::json_error`]).

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

/// Hard cap on one frame's payload, in bytes.
pub const MAX_FRAME: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes is over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame")]
    Empty,
    #[error("the peer closed the connection")]
    Closed,
    #[error("frame is truncated: the peer closed the connection mid-frame")]
    Truncated,
    #[error("timed out waiting for the peer")]
    TimedOut,
    #[error("socket error: {0}")]
    Io(#[source] io::Error),
    /// What was wrong and where (line and column), never a value from the frame.
    #[error("frame is not a valid message: {0}")]
    Malformed(String),
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => FrameError::TimedOut,
            io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        }
    }
}

/// Validates a frame header and returns the payload length.
pub fn check_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    Ok(len)
}

/// Serializes `msg` into a complete frame (header included).
pub fn encode<T: Serialize>(msg: &T) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let payload = Zeroizing::new(serde_json::to_vec(msg).map_err(|e| malformed(&e))?);
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max: MAX_FRAME,
        });
    }
    let mut out = Zeroizing::new(Vec::with_capacity(4 + payload.len()));
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Parses a payload (without its header).
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(|e| malformed(&e))
}

/// serde_json's own text quotes the values it found (a code, say): describe it without them.
fn malformed(e: &serde_json::Error) -> FrameError {
    FrameError::Malformed(crate::json_error::describe(e))
}

/// Writes one message as a frame. The socket's write timeout bounds how long this blocks.
pub fn write_msg<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let frame = encode(msg)?;
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame's payload. The socket's read timeout bounds how long this blocks.
pub fn read_payload<R: Read>(r: &mut R) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = check_len(header)?;
    let mut payload = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut payload)?;
    Ok(payload)
}

/// Reads and parses one message.
pub fn read_msg<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let payload = read_payload(r)?;
    decode(&payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pam::{LoginContext, Request};

    fn ctx() -> LoginContext {
        LoginContext {
            account: "admin".into(),
            service: "sshd".into(),
            rhost: Some("10.0.0.1".into()),
            tty: None,
            ruser: None,
            uid: None,
            ssh_auth_info: None,
        }
    }

    #[test]
    fn round_trip() {
        let msg = Request::AuthStart { ctx: ctx() };
        let mut buf = Vec::new();
        write_msg(&mut buf, &msg).unwrap();
        assert_eq!(
            u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize,
            buf.len() - 4
        );
        let back: Request = read_msg(&mut &buf[..]).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn oversized_header_is_refused_before_allocating() {
        let mut buf = (u32::MAX).to_be_bytes().to_vec();
        buf.extend_from_slice(b"{}");
        let err = read_payload(&mut &buf[..]).unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { len, max: MAX_FRAME } if len == u32::MAX as usize)
        );
        let just_over = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(
            check_len(just_over),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(
            check_len((MAX_FRAME as u32).to_be_bytes()).unwrap(),
            MAX_FRAME
        );
    }

    #[test]
    fn truncated_and_closed_are_told_apart() {
        assert!(matches!(
            read_payload(&mut &b""[..]),
            Err(FrameError::Closed)
        ));
        assert!(matches!(
            read_payload(&mut &b"\0\0"[..]),
            Err(FrameError::Closed)
        ));
        let mut buf = 10u32.to_be_bytes().to_vec();
        buf.extend_from_slice(b"{\"a\"");
        assert!(matches!(
            read_payload(&mut &buf[..]),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let mut buf = 5u32.to_be_bytes().to_vec();
        buf.extend_from_slice(b"\xff\xfe{]x");
        let err = read_msg::<_, Request>(&mut &buf[..]).unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");
        assert!(matches!(check_len([0; 4]), Err(FrameError::Empty)));
    }

    #[test]
    fn a_malformed_answer_never_repeats_the_code() {
        for payload in [
            &br#"{"type":"answer","text":123456}"#[..],
            br#"{"type":"answer","text":123456.0}"#,
            br#"{"type":"answer","text":["123456"]}"#,
            br#"{"type":"answer","text":"123456","extra":"123456"}"#,
            br#"{"type":"answer","123456":"x"}"#,
            br#"{"type":"123456"}"#,
            br#"{"type":"answer","text":"123456"} 123456"#,
            br#"{"type":"answer","text":"123456"#,
        ] {
            let mut buf = (payload.len() as u32).to_be_bytes().to_vec();
            buf.extend_from_slice(payload);
            let err = read_msg::<_, Request>(&mut &buf[..]).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, FrameError::Malformed(_)), "{text}");
            assert!(!text.contains("123456"), "the code leaked: {text}");
        }
        let err = decode::<Request>(br#"{"type":"answer","text":123456}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("frame is not a valid message: invalid type: integer, expected"),
            "{err}"
        );
    }
}
