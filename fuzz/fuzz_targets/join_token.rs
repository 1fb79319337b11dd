//! Join tokens, pasted by an admin into `jitd join`: refused with a message, or read, and a
//! token that reads encodes back to the same token.
#![no_main]

use jit_proto::join_token::JoinToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = JoinToken::decode(text) {
        let again = JoinToken::decode(token.encode().expose()).expect("an encoded token decodes");
        assert_eq!(again, token);
    }
});
