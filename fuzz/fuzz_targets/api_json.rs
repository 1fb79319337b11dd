//! The API's JSON bodies, both ways: what the server reads from any client (the unauthenticated
//! join and enrollment bodies first), and what jitd and jitctl read from a server. The first
//! byte picks the type; a body that parses serializes and parses back to the same value.
#![no_main]

use jit_proto::api;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 16 {
        0 => check::<api::JoinRequest>(body),
        1 => check::<api::EnrollStart>(body),
        2 => check::<api::EnrollConfirm>(body),
        3 => check::<api::NewReservation>(body),
        4 => check::<api::LoginBegin>(body),
        5 => check::<api::LoginVerify>(body),
        6 => check::<api::HostEvents>(body),
        7 => check::<api::NewPerson>(body),
        8 => check::<api::NewAccount>(body),
        9 => check::<api::AccountChange>(body),
        10 => check::<api::ApproveRequest>(body),
        11 => check::<api::ExtendRequest>(body),
        12 => check::<api::LoginBegun>(body),
        13 => check::<api::LoginVerified>(body),
        14 => check::<api::OfflineGrants>(body),
        _ => check::<api::ErrorResponse>(body),
    }
});

fn check<T: Serialize + DeserializeOwned + std::fmt::Debug>(body: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(body) else {
        return;
    };
    let text = serde_json::to_vec(&value).expect("a parsed body serializes");
    let again: T = serde_json::from_slice(&text).expect("a serialized body parses back");
    // Not every type compares; its serialized form does.
    assert_eq!(
        serde_json::to_vec(&again).expect("serializes"),
        text,
        "{value:?}"
    );
}
