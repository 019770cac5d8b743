import { Kafka, logLevel } from 'kafkajs';
(async () => {
  const kafka = new Kafka({ brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
  const topic = `probe-${Date.now()}`;
  const admin = kafka.admin(); await admin.connect(); await admin.createTopics({ topics: [{ topic, numPartitions: 8 }], waitForLeaders: true }); await admin.disconnect();
  const producer = kafka.producer(); await producer.connect();
  const consumer = kafka.consumer({ groupId: topic, sessionTimeout: 10000, rebalanceTimeout: 20000, heartbeatInterval: 1000, maxWaitTimeInMs: Number(process.env.WAIT ?? 5000) });
  await consumer.connect(); await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const waiting = new Map<string, (t: number) => void>();
  await consumer.run({ partitionsConsumedConcurrently: 16, eachBatchAutoResolve: false, eachBatch: async ({ batch, resolveOffset }) => {
    for (const m of batch.messages) { waiting.get(m.key!.toString())?.(performance.now()); resolveOffset(m.offset); }
  }});
  await new Promise((r) => setTimeout(r, 3000));
  const sendMs: number[] = [], hop: number[] = [];
  for (let i = 0; i < 60; i++) {
    const key = `k${i}`; const got = new Promise<number>((r) => waiting.set(key, r));
    const t0 = performance.now();
    await producer.send({ topic, acks: -1, messages: [{ key, value: 'x' }] });
    const t1 = performance.now(); const t2 = await got;
    if (i >= 10) { sendMs.push(t1 - t0); hop.push(t2 - t0); }
    await new Promise((r) => setTimeout(r, 20));
  }
  const q = (a: number[], p: number) => a.sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))]!.toFixed(1);
  console.log('send p50', q(sendMs, .5), 'p99', q(sendMs, .99), '| produce->consume p50', q(hop, .5), 'p99', q(hop, .99));
  await consumer.disconnect(); await producer.disconnect();
})();
