//! Known-answer and refusal tests for signed notes, keys and checkpoints.
//!
//! Sources of the published values:
//! - Go `golang.org/x/mod/sumdb/note`: the package documentation's example and
//!   `note_test.go` (`TestNewVerifier`, `TestNewSigner`, `TestSign`, `TestOpen`): the
//!   PeterNeumann signer and verifier keys, the EnochRoot verifier key, the two-line text and
//!   both signatures, and the malformed-message list.
//! - c2sp.org/signed-note, "Verifier keys / Example": the `example.com/foo` key and note.
//! - c2sp.org/tlog-checkpoint: the `example.com/behind-the-sofa` checkpoint body.
//! - google/trillian-examples `formats/log/checkpoint_test.go` (`TestSumDBNoteParsing`): a
//!   real `sum.golang.org` checkpoint and the Go checksum database's public key.

use mamori_ledger::{
    Checkpoint, Error, Hash, KeyId, SignedNote, SignerKey, VerifierKey, open_note, sign_note,
};

const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

const C2SP_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const C2SP_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
const SUMDB_CHECKPOINT: &str = "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n\u{2014} sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n";

fn peter() -> VerifierKey {
    VerifierKey::parse(PETER_VKEY).expect("published vkey")
}

fn enoch() -> VerifierKey {
    VerifierKey::parse(ENOCH_VKEY).expect("published vkey")
}

#[test]
fn signing_the_go_example_reproduces_the_published_note() {
    let signer = SignerKey::parse(PETER_SKEY).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), KeyId(0xc74f20a3));
    assert_eq!(signer.to_secret_text(), PETER_SKEY);
    assert_eq!(signer.verifier().to_string(), PETER_VKEY);
    // Ed25519 is deterministic (RFC 8032), so this is a true known answer.
    assert_eq!(
        sign_note(TEXT, &[&signer]).unwrap(),
        format!("{TEXT}\n{PETER_SIG}")
    );
}

#[test]
fn a_key_from_an_all_zero_seed_is_the_published_enoch_key() {
    // The Go example's EnochRoot key and signature are reproduced from a zero seed: this
    // checks seed → public key, the key id preimage and the vkey encoding end to end.
    let signer = SignerKey::from_seed("EnochRoot", &[0; 32]).unwrap();
    assert_eq!(signer.verifier().to_string(), ENOCH_VKEY);
    let peter_signed = format!("{TEXT}\n{PETER_SIG}");
    let both = sign_note(TEXT, &[&SignerKey::parse(PETER_SKEY).unwrap(), &signer]).unwrap();
    assert_eq!(both, format!("{peter_signed}{ENOCH_SIG}"));
}

#[test]
fn opening_follows_go_semantics() {
    let note = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");

    // One known key: Peter verifies, Enoch's signature is kept but not trusted.
    let opened = open_note(note.as_bytes(), &[peter()]).unwrap();
    assert_eq!(opened.text(), TEXT);
    assert_eq!(opened.verified_by(), [peter()]);
    assert_eq!(opened.signatures().len(), 2);

    // Both known.
    let opened = open_note(note.as_bytes(), &[peter(), enoch()]).unwrap();
    assert_eq!(opened.verified_by(), [peter(), enoch()]);

    // None known: refused, naming who did sign.
    let err = open_note(note.as_bytes(), &[]).unwrap_err();
    let Error::NoTrustedSignature { signed_by } = &err else {
        panic!("{err}")
    };
    assert_eq!(signed_by, &["PeterNeumann+c74f20a3", "EnochRoot+af0cfe78"]);

    // The same trusted key twice makes a used signature ambiguous…
    let enoch_only = format!("{TEXT}\n{ENOCH_SIG}");
    assert!(matches!(
        open_note(enoch_only.as_bytes(), &[enoch(), peter(), enoch()]),
        Err(Error::AmbiguousKey { .. })
    ));
    // …but not an unused one.
    let peter_only = format!("{TEXT}\n{PETER_SIG}");
    open_note(peter_only.as_bytes(), &[enoch(), peter(), enoch()]).unwrap();

    // A repeated signature counts once.
    let twice = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}");
    assert_eq!(
        open_note(twice.as_bytes(), &[peter()])
            .unwrap()
            .verified_by()
            .len(),
        1
    );
}

#[test]
fn too_many_signatures_are_refused() {
    let note = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
    for verifiers in [vec![peter()], vec![]] {
        assert!(matches!(
            open_note(note.as_bytes(), &verifiers),
            Err(Error::MalformedNote { .. })
        ));
    }
    let note = format!("{TEXT}\n{}", PETER_SIG.repeat(100));
    open_note(note.as_bytes(), &[peter()]).unwrap();
}

#[test]
fn a_bad_signature_by_a_trusted_key_refuses_the_note() {
    // Go's TestOpen inserts "ABCD" at byte 60 of the signature line.
    let (head, tail) = PETER_SIG.split_at(60);
    let bad = format!("{TEXT}\n{head}ABCD{tail}");
    let err = open_note(bad.as_bytes(), &[peter()]).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSignature { name, key_id } if name == "PeterNeumann" && *key_id == KeyId(0xc74f20a3)),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "invalid signature for key PeterNeumann+c74f20a3"
    );

    // A bad signature by an unknown key is ignored, as the spec requires.
    let (head, tail) = ENOCH_SIG.split_at(60);
    let note = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{head}ABCD{tail}");
    let opened = open_note(note.as_bytes(), &[peter()]).unwrap();
    assert_eq!(opened.verified_by(), [peter()]);
    assert_eq!(opened.signatures().len(), 5);

    // A changed text no longer verifies.
    let altered = format!("{}\n{PETER_SIG}", TEXT.replace("answer", "Answer"));
    assert!(matches!(
        open_note(altered.as_bytes(), &[peter()]),
        Err(Error::InvalidSignature { .. })
    ));
}

#[test]
fn malformed_notes_are_refused() {
    let peter_sig_unterminated = PETER_SIG.trim_end_matches('\n');
    let mut bad: Vec<Vec<u8>> = vec![
        // Go's TestOpen list.
        TEXT.into(),
        format!("{TEXT}\n").into(),
        format!("{TEXT}\n{peter_sig_unterminated}").into(),
        format!("\x01{TEXT}\n{PETER_SIG}").into(),
        [b"\xff".as_slice(), format!("{TEXT}\n{PETER_SIG}").as_bytes()].concat(),
        format!(
            "{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        )
        .into(),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n").into(),
        // Ours.
        Vec::new(),
        b"\n".to_vec(),
        b"\n\n".to_vec(),
        format!("\n{PETER_SIG}").into(),
        format!("{TEXT}\n{}", PETER_SIG.replace('\u{2014}', "-")).into(),
        format!("{TEXT}\n{}", PETER_SIG.replace("\u{2014} ", "\u{2014}")).into(),
        format!("{TEXT}\n{}", PETER_SIG.replace(" x08", "  x08")).into(),
        format!("{TEXT}\n{}", PETER_SIG.replace("=\n", "\n")).into(),
        format!("{TEXT}\n\u{2014} PeterNeumann AAAA\n").into(),
        format!("{TEXT}\n\u{2014} PeterNeumann x08go/Y=\n").into(),
        format!("{TEXT}\n\u{2014} Peter\x01Neumann x08go/ZJ\n").into(),
        format!("{TEXT}\n\u{2014} Peter+Neumann x08go/ZJ\n").into(),
        format!("{TEXT}\r\n{PETER_SIG}").into(),
        format!("{TEXT}\n{PETER_SIG}\n").into(),
        vec![b'a'; mamori_ledger::MAX_NOTE_BYTES + 1],
    ];
    // Every prefix of a good note but the whole is malformed or untrusted.
    let good = format!("{TEXT}\n{PETER_SIG}");
    for end in (0..good.len()).filter(|&i| good.is_char_boundary(i)) {
        bad.push(good[..end].into());
    }
    for note in bad {
        assert!(
            open_note(&note, &[peter()]).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(&note)
        );
    }
}

#[test]
fn the_c2sp_example_note_verifies() {
    let vkey = VerifierKey::parse(C2SP_VKEY).unwrap();
    assert_eq!(vkey.to_string(), C2SP_VKEY);
    let opened = open_note(C2SP_NOTE.as_bytes(), &[vkey]).unwrap();
    assert_eq!(opened.text(), "This is an example message.\n");
}

#[test]
fn a_text_with_blank_lines_splits_at_the_last_one() {
    // c2sp.org/signed-note: "the text is separated from the signatures by the last empty
    // line in the note".
    let signer = SignerKey::from_seed("k", &[9; 32]).unwrap();
    let text = "first\n\nsecond\n\n";
    let note = sign_note(text, &[&signer]).unwrap();
    let opened = open_note(note.as_bytes(), &[signer.verifier()]).unwrap();
    assert_eq!(opened.text(), text);
}

#[test]
fn key_strings_refuse_every_mangling() {
    // Go's TestNewVerifier / TestNewSigner: every proper substring and every single-byte
    // increment of a good key string must be refused.
    fn manglings(key: &str) -> Vec<String> {
        let b = key.as_bytes();
        let mut out = Vec::new();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if (i, j) != (0, b.len()) {
                    out.push(String::from_utf8_lossy(&b[i..j]).into_owned());
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            out.push(String::from_utf8_lossy(&m).into_owned());
        }
        out
    }
    for m in manglings(PETER_VKEY) {
        assert!(VerifierKey::parse(&m).is_err(), "accepted vkey {m:?}");
    }
    for m in manglings(PETER_SKEY) {
        assert!(SignerKey::parse(&m).is_err(), "accepted skey {m:?}");
    }
    // Go's extra cases: a 32-byte key padded with junk, and an unknown algorithm byte, each
    // with a key id adjusted to match.
    assert!(
        VerifierKey::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err()
    );
    assert!(matches!(
        VerifierKey::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(Error::UnsupportedAlgorithm(0x65))
    ));
    assert!(matches!(
        VerifierKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(Error::KeyIdMismatch { .. })
    ));
}

#[test]
fn the_c2sp_checkpoint_example_parses() {
    let text =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let cp = Checkpoint::parse(text).unwrap();
    assert_eq!(cp.origin(), "example.com/behind-the-sofa");
    assert_eq!(cp.size(), 20_852_163);
    assert_eq!(
        cp.root().to_hex(),
        "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62"
    );
    assert!(cp.extensions().is_empty());
    assert_eq!(cp.to_text(), text);
}

#[test]
fn a_real_go_checksum_database_checkpoint_verifies() {
    let key = VerifierKey::parse(SUMDB_VKEY).unwrap();
    assert_eq!(key.to_string(), SUMDB_VKEY);
    let cp = Checkpoint::open(
        SUMDB_CHECKPOINT.as_bytes(),
        "go.sum database tree",
        std::slice::from_ref(&key),
    )
    .unwrap();
    assert_eq!(cp.size(), 6_476_701);
    assert_eq!(cp.origin(), "go.sum database tree");
    assert_eq!(cp.note().verified_by(), std::slice::from_ref(&key));
    assert!(matches!(
        Checkpoint::open(
            SUMDB_CHECKPOINT.as_bytes(),
            "Go rocks but I might have the wrong ID",
            std::slice::from_ref(&key)
        ),
        Err(Error::OriginMismatch { .. })
    ));
    // One changed digit of the size breaks the signature.
    let forged = SUMDB_CHECKPOINT.replace("6476701", "6476702");
    assert!(matches!(
        Checkpoint::open(forged.as_bytes(), "go.sum database tree", &[key]),
        Err(Error::InvalidSignature { .. })
    ));
}

#[test]
fn own_checkpoints_round_trip_and_refuse_other_keys() {
    let signer = SignerKey::from_seed("mamori.example/ledger", &[5; 32]).unwrap();
    let other = SignerKey::from_seed("mamori.example/ledger", &[6; 32]).unwrap();
    let cp = Checkpoint::new(
        "mamori.example/ledger",
        1_000_000,
        Hash::from_bytes([3; 32]),
    )
    .unwrap()
    .with_extension("extension")
    .unwrap();
    let note = cp.sign(&signer).unwrap();
    let opened = Checkpoint::open(
        note.as_bytes(),
        "mamori.example/ledger",
        &[signer.verifier()],
    )
    .unwrap();
    assert_eq!(*opened.checkpoint(), cp);
    // Same name, different key: a different key id, so the signature is unknown.
    assert!(matches!(
        Checkpoint::open(
            note.as_bytes(),
            "mamori.example/ledger",
            &[other.verifier()]
        ),
        Err(Error::NoTrustedSignature { .. })
    ));
    // A cosigned checkpoint still opens with either key.
    let cosigned = sign_note(&cp.to_text(), &[&signer, &other]).unwrap();
    Checkpoint::open(
        cosigned.as_bytes(),
        "mamori.example/ledger",
        &[other.verifier()],
    )
    .unwrap();
    // A signed note whose text is not a checkpoint is refused after verification.
    let not_a_checkpoint = sign_note("hello\n", &[&signer]).unwrap();
    assert!(matches!(
        Checkpoint::open(not_a_checkpoint.as_bytes(), "hello", &[signer.verifier()]),
        Err(Error::MalformedCheckpoint { .. })
    ));
    // Parsing without verifying exposes nothing as trusted.
    let parsed = SignedNote::parse(note.as_bytes()).unwrap();
    assert_eq!(parsed.unverified_text(), cp.to_text());
}

#[test]
fn signing_refuses_malformed_texts() {
    let signer = SignerKey::from_seed("k", &[1; 32]).unwrap();
    for text in ["", "no newline", "tab\there\n", "nul\0\n"] {
        assert!(sign_note(text, &[&signer]).is_err(), "{text:?}");
    }
    assert!(sign_note("ok\n", &[]).is_err());
}
