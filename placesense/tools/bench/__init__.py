"""``placesense bench``: the whole pipeline measured against the raw limits of the same broker and InfluxDB.

One run, four timed parts, each on its own topic prefix and database so none sees another's messages:

1. raw InfluxDB: the line protocol of the workload written in 5,000-point batches to a scratch database;
2. raw MQTT: a bare paho subscriber (MQTT 5, QoS 1, paho's automatic PUBACK) draining a backlog of the workload;
3. pipeline capacity: the full service (``Service.build``: decode, validate, durable write, ack, sinks)
   draining the same backlog — messages/s from its first receive to its last stored reading;
4. pipeline latency: the service running while a publisher process publishes the workload live at
   ``--live-rate`` — publish→stored latency per message.

Capacity is measured from a backlog on both sides because on a small machine a live Python publisher, the
broker and the subscriber share the cores: a live run measures the publisher as much as the subscriber. The
publisher (``placesense.tools.bench.roles``) is always a separate process. ``lost`` is what the two pipeline parts
published minus the points found in InfluxDB afterwards. The last stdout line is the JSON object DESIGN.md
fixes; progress goes to stderr.

The package: ``cli`` (the sub-command: options, servers, signals), ``measure`` (the parts in order and the
contract JSON, with the machine it ran on), ``run`` (``BenchRun``: one run's settings, the raw limits, the two
pipeline parts, counting and cleaning up), ``workload`` (the devices and messages, rebuilt identically in every
process), ``worker`` (``Worker``: the bench's end of a helper process) and ``roles`` (what a helper process runs:
the publisher and the raw-limit probes), ``meters`` (peak memory, CPU per message, latency quantiles), ``logs``
(what the pipeline stored and alerted, as the bench saw it), ``state_size`` (saved evaluation state after a
simulated life) and ``progress`` (progress lines and ``BenchError``). Import names from their modules: this file
hands on none.

The bench measures; it must not change how ingest works. Its only hook into the pipeline is a sink, which the
pipeline calls with readings right after their durable write and PUBACK.
"""
