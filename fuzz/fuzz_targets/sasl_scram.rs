//! Feeds arbitrary client-first and client-final messages to the SCRAM
//! server state machine (and arbitrary server messages to the client's).
//! Nothing may panic; an exchange may only succeed for the user its first
//! message named, and only with the stored credential's proof.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_auth::scram::{Credential, FakeCredentials, Mechanism, ScramClient, ScramServer};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mechanism = if selector & 1 == 0 { Mechanism::Sha256 } else { Mechanism::Sha512 };
    // The first NUL splits the input into the client's two messages.
    let (first, last) = match rest.iter().position(|b| *b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let fake = FakeCredentials::with_secret([9; 32]);
    // A cheap credential (the minimum iteration count is enforced only by
    // the controller), so the fuzzer spends its time on parsing.
    let stored = Credential::from_password(mechanism, b"pencil", b"salt", 1);
    let mut server = ScramServer::new(mechanism);
    let named = sluice_auth::scram::parse_client_first(first).ok().map(|f| f.user);
    if server
        .client_first(first, |u| (u == "user").then(|| stored.clone()), &fake)
        .is_ok()
        && let Ok((user, _)) = server.client_final(last)
    {
        assert_eq!(Some(&user), named.as_ref(), "authenticated as another user");
        assert_eq!(user, "user", "an unknown user authenticated");
    }
    // The client against a hostile server.
    let mut client = ScramClient::new(mechanism, "user", b"pencil");
    if client.client_first_with_nonce("fuzz").is_ok() && client.server_first(first).is_ok() {
        let _ = client.server_final(last);
    }
});
