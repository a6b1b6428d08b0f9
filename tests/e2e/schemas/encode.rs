//! `schema_encode`: what it writes (Avro, Protobuf, JSON Schema),
//! Confluent's deserializers read; what `schema_decode` read, it writes
//! back byte for byte; what does not fit is rejected with its path.

use super::*;
use base64::Engine as _;
use rdkafka::Message;

#[test]
fn avro_decoded_then_encoded_round_trips_byte_for_byte() {
    let s = Setup::new(&["sr-round"]);
    s.produce(Typed::new("sr-round", "avro", 150));
    let originals = read_topic(
        &s.bootstrap,
        "sr-round",
        PARTITIONS,
        150,
        Duration::from_secs(10),
    );
    assert_eq!(originals.len(), 150);
    let path = s.config(&["sr-round"], true);
    with_components(
        &path,
        &(decode_table() + &encode_table("", "") + &s.file_sink()),
    );
    s.run(
        &path,
        "sr-round",
        &end_offsets(originals.iter().map(|m| (m.partition(), m.offset()))),
    );
    let out: BTreeMap<(i32, i64), Vec<u8>> = read_sink_json(&s.out(), "typed")
        .iter()
        .map(|l| {
            let framed = l["value_base64"]
                .as_str()
                .expect("framed bytes are not text");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(framed)
                .expect("base64");
            ((int(&l["partition"]) as i32, int(&l["offset"])), bytes)
        })
        .collect();
    assert_eq!(out.len(), originals.len());
    for m in &originals {
        assert_eq!(
            out[&(m.partition(), m.offset())],
            m.payload().unwrap_or_default(),
            "offset {}",
            m.offset()
        );
    }
}

#[test]
fn encoded_json_reads_back_with_confluent_and_misfits_are_rejected_with_their_path() {
    let s = Setup::new(&["sr-src", "sr-json-in", "sr-encoded"]);
    // The rendered JSON of Confluent-written Avro events is the input; the
    // schema is registered by the encoder itself (auto_register) under the
    // input topic's subject.
    s.produce(Typed::new("sr-src", "avro", 60));
    let rendered = s.expected("sr-src", "avro", 60);
    let value = |v: String| Record {
        partition: 0,
        key: None,
        value: Some(v.into_bytes()),
        headers: Vec::new(),
    };
    let mut records: Vec<Record> = rendered
        .iter()
        .map(|(at, v)| Record {
            partition: at.1,
            ..value(v.to_string())
        })
        .collect();
    let mut misfit = rendered.values().next().expect("an event").clone();
    misfit["address"]["zip"] = Value::String("not a number".into());
    let mut missing = misfit.clone();
    missing.as_object_mut().expect("object").remove("name");
    records.extend(
        [
            misfit.to_string(),
            missing.to_string(),
            "not json".to_owned(),
        ]
        .map(value),
    );
    let acked = produce_records(&s.bootstrap, "sr-json-in", &records);
    let url = s.registry.url();
    let avro_v1 = confluent(&[
        "schema",
        "--bootstrap",
        &s.bootstrap,
        "--registry",
        &url,
        "--topic",
        "x",
        "--count",
        "0",
    ]);
    let schema = toml::Value::String(avro_v1.trim().to_owned()).to_string();
    let path = s.config(&["sr-json-in"], true);
    let kafka_sink = format!(
        "\n[[pipeline.sink]]\nname = \"out\"\ncomponent = \"{}\"\n\
         config = {{ topic = \"sr-encoded\", partition = \"same\" }}\nkafka_produce = [\"sr-encoded\"]\n",
        guest("kafka_sink").display()
    );
    let encoder = encode_table(
        &format!(r#"framing = "header", auto_register = true, format = "avro", schema = {schema}"#),
        "schema_registry_register = true",
    );
    with_components(&path, &(encoder + &kafka_sink));
    s.run(&path, "sr-json-in", &end_offsets(acked.iter().copied()));
    let requests = s.registry.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("POST /subjects/sr-json-in-value/versions 200")),
        "{requests:?}"
    );

    // Confluent's deserializer reads every encoded event as its input.
    let back = s.expected("sr-encoded", "avro", 60);
    let sorted = |m: &BTreeMap<At, Value>| {
        let mut v: Vec<String> = m.values().map(Value::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&back), sorted(&rendered));

    // The misfits, each dead-lettered with the offset and the path.
    let reasons: Vec<String> = s
        .dead_letters(3)
        .iter()
        .map(|m| header(m, "flumen.error"))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    for want in [
        "$.address.zip: expected an integer, found a string",
        "$.name: missing",
        "not JSON",
    ] {
        assert!(
            reasons
                .iter()
                .any(|r| r.contains(want) && r.contains("offset")),
            "{want}: {reasons:?}"
        );
    }
}

#[test]
fn protobuf_and_json_schema_decoded_then_encoded_read_back_with_confluent() {
    let topics = [
        "sr-pin-proto",
        "sr-pin-json",
        "sr-pin-proto-out",
        "sr-pin-json-out",
    ];
    let s = Setup::new(&topics);
    s.produce(Typed::new("sr-pin-proto", "protobuf", 40));
    s.produce(Typed::new("sr-pin-json", "json", 40));
    let want_proto = s.expected("sr-pin-proto", "protobuf", 40);
    let want_json = s.expected("sr-pin-json", "json", 40);
    // Decoded, then encoded with the topic's subject pinned at version 1
    // and the GUID framing, into `<topic>-out`.
    let path = s.config(&topics[..2], true);
    let kafka_sink = format!(
        "\n[[pipeline.sink]]\nname = \"out\"\ncomponent = \"{}\"\n\
         config = {{ topic = \"%{{topic}}-out\", partition = \"same\" }}\n\
         kafka_produce = [\"sr-pin-proto-out\", \"sr-pin-json-out\"]\n",
        guest("kafka_sink").display()
    );
    let encoder = encode_table(r#"version = "1", framing = "guid""#, "");
    with_components(&path, &(decode_table() + &encoder + &kafka_sink));
    let mut flumen = s.start(&path, &[]);
    s.wait(&mut flumen, "sr-pin-proto", &ends(want_proto.keys()));
    s.wait(&mut flumen, "sr-pin-json", &ends(want_json.keys()));
    flumen.terminate();
    let requests = s.registry.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /subjects/sr-pin-proto-value/versions/1 200")),
        "{requests:?}"
    );
    let sorted = |m: &BTreeMap<At, Value>| {
        let mut v: Vec<String> = m.values().map(Value::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(
        sorted(&s.expected("sr-pin-proto-out", "protobuf", 40)),
        sorted(&want_proto)
    );
    assert_eq!(
        sorted(&s.expected("sr-pin-json-out", "json", 40)),
        sorted(&want_json)
    );
    let framed = read_topic(
        &s.bootstrap,
        "sr-pin-proto-out",
        PARTITIONS,
        1,
        Duration::from_secs(10),
    );
    assert_eq!(
        framed[0].payload().and_then(|p| p.first()),
        Some(&1),
        "magic byte 1: the GUID framing"
    );
    assert!(s.dead_letters(0).is_empty(), "nothing rejected");
}
