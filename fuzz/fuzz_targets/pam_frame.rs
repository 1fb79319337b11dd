//! The PAM socket's frames, both ways: jitd reads requests from any local process that can
//! connect, pam_jit reads jitd's steps. Whatever arrives, reading fails cleanly or yields a
//! message that survives its own encoding unchanged.
#![no_main]

use jit_pam_proto::frame;
use jit_pam_proto::pam::{Request, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As the socket reads it: a header, then at most MAX_FRAME bytes of payload.
    let _ = frame::read_payload(&mut &data[..]);
    if let Ok(request) = frame::read_msg::<_, Request>(&mut &data[..]) {
        round_trip(&request);
    }
    if let Ok(step) = frame::read_msg::<_, Step>(&mut &data[..]) {
        round_trip(&step);
    }
    // As a payload alone (what the daemon decodes after its own length check).
    if let Ok(request) = frame::decode::<Request>(data) {
        round_trip(&request);
    }
    if let Ok(step) = frame::decode::<Step>(data) {
        round_trip(&step);
    }
});

fn round_trip<T>(msg: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    // A message read from a frame fits in a frame again (a re-encoding is never longer than
    // serde_json's compact form of what was read, which was at most MAX_FRAME).
    let Ok(bytes) = frame::encode(msg) else {
        return;
    };
    let again: T = frame::read_msg(&mut &bytes[..]).expect("an encoded frame reads back");
    assert_eq!(&again, msg);
}
