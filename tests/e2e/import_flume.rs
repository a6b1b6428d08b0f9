//! `flumen import-flume`: Flume agents converted into configs that
//! `flumen check` accepts with the real library components, and everything
//! that has no counterpart listed rather than dropped.

use crate::support::{flumen_in, repo};
use crate::support::{SeaweedFs, S3_ACCESS_KEY, S3_SECRET_KEY};
use std::path::Path;

/// Runs `flumen <args>` in `dir` (with `HOSTNAME` set, which the host
/// interceptor reads): (success, stdout, stderr).
fn flumen(args: &[&str], dir: &Path) -> (bool, String, String) {
    flumen_env(args, dir, &[])
}

/// [`flumen`] with more environment variables.
fn flumen_env(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut all = vec![("HOSTNAME", "edge-1")];
    all.extend_from_slice(env);
    flumen_in(dir, args, &all)
}

/// Converts `properties` and returns (config text, stderr).
fn import(dir: &Path, properties: &str, extra: &[&str]) -> (bool, String, String) {
    std::fs::write(dir.join("agent.properties"), properties).expect("write");
    let guests = repo().join("guests/target/wasm32-wasip2/release");
    let guests = guests.display().to_string();
    let mut args = vec!["import-flume", "agent.properties", "--guests", &guests];
    args.extend_from_slice(extra);
    flumen(&args, dir)
}

#[test]
fn a_kafka_source_agent_becomes_a_checked_pipeline() {
    let work = tempfile::tempdir().expect("tempdir");
    let rolled = work.path().join("rolled");
    std::fs::create_dir(&rolled).expect("dir");
    let properties = format!(
        r#"
# A Flume agent: Kafka source, memory channel, interceptors and sinks.
a1.sources = r1
a1.channels = c1
a1.sinks = log files web lake hb mirror

a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r1.channels = c1
a1.sources.r1.kafka.bootstrap.servers = broker1:9092,broker2:9092
a1.sources.r1.kafka.topics = app-logs, audit
a1.sources.r1.kafka.consumer.group.id = flume-logs
a1.sources.r1.kafka.consumer.auto.offset.reset = latest
a1.sources.r1.kafka.consumer.security.protocol = SASL_SSL
a1.sources.r1.kafka.consumer.sasl.mechanism = PLAIN
a1.sources.r1.kafka.consumer.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="hunter2";
a1.sources.r1.batchSize = 2000
a1.sources.r1.batchDurationMillis = 500
a1.sources.r1.interceptors = ts host dc keep extract mask id morph
a1.sources.r1.interceptors.ts.type = timestamp
a1.sources.r1.interceptors.host.type = host
a1.sources.r1.interceptors.host.hostHeader = origin
a1.sources.r1.interceptors.dc.type = static
a1.sources.r1.interceptors.dc.key = datacenter
a1.sources.r1.interceptors.dc.value = eu-west-1
a1.sources.r1.interceptors.keep.type = regex_filter
a1.sources.r1.interceptors.keep.regex = level=(info|warn|error)
a1.sources.r1.interceptors.keep.excludeEvents = false
a1.sources.r1.interceptors.extract.type = regex_extractor
a1.sources.r1.interceptors.extract.regex = level=(\\w+) user=(\\w+)
a1.sources.r1.interceptors.extract.serializers = s1 s2
a1.sources.r1.interceptors.extract.serializers.s1.name = level
a1.sources.r1.interceptors.extract.serializers.s2.name = user
a1.sources.r1.interceptors.mask.type = search_replace
a1.sources.r1.interceptors.mask.searchPattern = \\d{{4}}-\\d{{4}}
a1.sources.r1.interceptors.mask.replaceString = ****
a1.sources.r1.interceptors.id.type = org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder
a1.sources.r1.interceptors.id.headerName = event-id
a1.sources.r1.interceptors.morph.type = org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder

a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000

a1.sinks.log.type = logger
a1.sinks.log.channel = c1
a1.sinks.log.maxBytesToLog = 64
a1.sinks.files.type = file_roll
a1.sinks.files.channel = c1
a1.sinks.files.sink.directory = {rolled}
a1.sinks.files.sink.rollInterval = 30
a1.sinks.web.type = http
a1.sinks.web.channel = c1
a1.sinks.web.endpoint = http://collector.internal:8080/ingest
a1.sinks.web.requestTimeout = 5000
a1.sinks.lake.type = hdfs
a1.sinks.lake.channel = c1
a1.sinks.lake.hdfs.path = hdfs://namenode:8020/lake/%{{topic}}/dt=%Y-%m-%d/%H
a1.sinks.lake.hdfs.filePrefix = events
a1.sinks.lake.hdfs.fileSuffix = .jsonl.gz
a1.sinks.lake.hdfs.fileType = CompressedStream
a1.sinks.lake.hdfs.codeC = gzip
a1.sinks.lake.hdfs.rollInterval = 300
a1.sinks.lake.hdfs.rollSize = 67108864
a1.sinks.lake.hdfs.rollCount = 100000
a1.sinks.lake.hdfs.timeZone = Europe/Paris
a1.sinks.hb.type = hbase
a1.sinks.hb.channel = c1
a1.sinks.mirror.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.mirror.channel = c1
a1.sinks.mirror.kafka.topic = app-logs-copy
a1.sinks.mirror.kafka.bootstrap.servers = backup:9092
a1.sinks.mirror.allowTopicOverride = true
"#,
        rolled = rolled.display()
    );
    let (ok, toml, err) = import(work.path(), &properties, &[]);
    assert!(ok, "{err}");
    for expected in [
        "bootstrap_servers = \"broker1:9092,broker2:9092\"",
        "\"auto.offset.reset\" = \"latest\"",
        "name = \"c1\"",
        "topics = [\"app-logs\", \"audit\"]",
        "group_id = \"flume-logs\"",
        "batch = { max_events = 2000, max_wait_ms = 500 }",
        "config = { pattern = \"level=(info|warn|error)\", mode = \"keep\" }",
        "headers = \"level,user\"",
        "config = { header = \"event-id\", prefix = \"\", preserve_existing = \"true\" }",
        "env_from_host = [\"HOSTNAME\"]",
        "config = { max_bytes = \"64\" }",
        "http_allow = [\"collector.internal:8080\"]",
        "config = { topic = \"app-logs-copy\" }",
        "kafka_produce = [\"app-logs-copy\"]",
        "\"sasl.username\" = \"alice\"",
        "\"sasl.password\" = \"${KAFKA_PASSWORD}\"",
        "REPLACE-ME-hbase-sink.wasm",
        // Flume's HDFS sink becomes the s3 sink: path escapes, rolls, gzip.
        "key = \"lake/%{topic}/dt=%Y-%m-%d/%H/events.%{topic}-%{partition}-%{start_offset}.jsonl.gz\"",
        "compression = \"gzip\"",
        "batch = { max_events = 100000, max_bytes = 67108864, max_wait_ms = 300000 }",
        "config = { path = \"/out/files-%{partition}-%{seq}.log\", format = \"value\", roll_interval_s = \"30\" }",
    ] {
        assert!(toml.contains(expected), "missing `{expected}` in:\n{toml}");
    }
    // Listed, in the header and on stderr.
    for unmapped in [
        "interceptor `morph`",
        "sink `hb` (type hbase)",
        "sink `lake` (HDFS → s3): hdfs.timeZone = Europe/Paris",
        "useIP",
        "sink `mirror`: brokers backup:9092",
        "allowTopicOverride = true",
        "set KAFKA_PASSWORD",
    ] {
        assert!(err.contains(unmapped), "`{unmapped}` not listed:\n{err}");
        assert!(
            toml.contains(unmapped),
            "`{unmapped}` not in the header:\n{toml}"
        );
    }
    // The interceptors keep Flume's order.
    let order: Vec<&str> = toml
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|n| n.trim_end_matches('"'))
        .collect();
    assert_eq!(
        order,
        [
            "c1", "ts", "host", "dc", "keep", "extract", "mask", "id", "log", "files", "web",
            "lake", "hb", "mirror"
        ]
    );
    // The password is never copied; the HBase sink is not silently a sink
    // that discards: `check` refuses the config until it is replaced.
    assert!(!toml.contains("hunter2"), "{toml}");
    assert!(!toml.contains("null_sink"), "{toml}");
    std::fs::write(work.path().join("flumen.toml"), &toml).expect("write");
    let env = [
        ("KAFKA_PASSWORD", "from-the-environment"),
        ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY),
    ];
    let (ok, out, err) = flumen_env(&["check", "--config", "flumen.toml"], work.path(), &env);
    assert!(
        !ok && err.contains("REPLACE-ME-hbase-sink.wasm"),
        "{out}{err}"
    );
    // Once replaced, and the s3 sink pointed at a store (a real one, whose
    // sink `check` initializes), the real components accept what was
    // generated.
    let store = SeaweedFs::start();
    store.create_bucket("lake");
    let authority = store.endpoint.trim_start_matches("http://");
    let replaced = toml
        .replace("REPLACE-ME-hbase-sink.wasm", "null_sink.wasm")
        .replace("\"https://CHANGE-ME\"", &format!("\"{}\"", store.endpoint))
        .replace("bucket = \"CHANGE-ME\"", "bucket = \"lake\"")
        .replace(
            "http_allow = [\"CHANGE-ME\"]",
            &format!("http_allow = [\"{authority}\"]"),
        );
    std::fs::write(work.path().join("flumen.toml"), &replaced).expect("write");
    let (ok, out, err) = flumen_env(&["check", "--config", "flumen.toml"], work.path(), &env);
    assert!(
        ok,
        "flumen check refused the converted config:\n{out}{err}\n{toml}"
    );
    assert!(out.contains("config OK"), "{out}");
}

#[test]
fn a_kafka_channel_without_a_source_is_read_directly() {
    let work = tempfile::tempdir().expect("tempdir");
    let properties = "
agent.channels = kc
agent.sinks = out
agent.channels.kc.type = org.apache.flume.channel.kafka.KafkaChannel
agent.channels.kc.kafka.bootstrap.servers = kafka:9092
agent.channels.kc.kafka.topic = events
agent.channels.kc.kafka.consumer.group.id = consumers
agent.channels.kc.parseAsFlumeEvent = false
agent.sinks.out.type = null
agent.sinks.out.channel = kc
";
    let (ok, toml, err) = import(work.path(), properties, &[]);
    assert!(ok, "{err}");
    assert!(toml.contains("topics = [\"events\"]") && toml.contains("group_id = \"consumers\""));
    assert!(toml.contains("null_sink.wasm"), "{toml}");
    assert!(err.contains("everything was mapped"), "{err}");
    std::fs::write(work.path().join("flumen.toml"), &toml).expect("write");
    let (ok, out, err) = flumen(&["check", "--config", "flumen.toml"], work.path());
    assert!(ok, "{out}{err}");
}

#[test]
fn agents_are_chosen_and_non_kafka_agents_are_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let two = "
a.channels = k
a.channels.k.type = org.apache.flume.channel.kafka.KafkaChannel
a.channels.k.kafka.topic = t
b.sources = avro
b.channels = mem
b.sources.avro.type = avro
b.sources.avro.channels = mem
b.channels.mem.type = memory
";
    let (ok, _, err) = import(work.path(), two, &[]);
    assert!(!ok && err.contains("several agents (a, b)"), "{err}");
    let (ok, toml, _) = import(work.path(), two, &["--agent", "a"]);
    assert!(ok && toml.contains("topics = [\"t\"]"), "{toml}");
    let (ok, _, err) = import(work.path(), two, &["--agent", "b"]);
    assert!(
        !ok && err.contains("agent `b` reads no Kafka topic"),
        "{err}"
    );
    let (ok, _, err) = import(work.path(), two, &["--agent", "c"]);
    assert!(!ok && err.contains("no agent `c`"), "{err}");
}
