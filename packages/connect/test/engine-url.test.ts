import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { awsTarget, connectBroker, hasBlobStore, parseEngineUrl, redact } from '@switchboard/connect';
import { isSwitchboardError } from '@switchboard/core';
import { describe, expect, it } from 'vitest';

describe('parseEngineUrl', () => {
  it.each([
    ['memory:', 'memory'],
    ['sqlite:.switchboard/broker.db', 'sqlite'],
    ['sqlite:///var/data/broker.db', 'sqlite'],
    ['nats://127.0.0.1:4222', 'nats'],
    ['amqp://guest:guest@127.0.0.1:5672', 'rabbitmq'],
    ['redis://127.0.0.1:6379/0', 'redis'],
    ['postgres://postgres@127.0.0.1:5432/test', 'postgres'],
    ['postgresql://postgres@127.0.0.1/test', 'postgres'],
    ['mqtt://127.0.0.1:1883', 'mqtt'],
    ['mqtts://user:pass@broker.example:8883?prefix=sb', 'mqtt'],
  ])('%s → %s', (url, engine) => {
    expect(parseEngineUrl(url).engine).toBe(engine);
  });

  it('keeps the sqlite path and the query parameters', () => {
    expect(parseEngineUrl('sqlite:data/q.db?prefix=x')).toMatchObject({ path: 'data/q.db', params: { prefix: 'x' } });
    expect(parseEngineUrl('sqlite:///abs/q.db').path).toBe('/abs/q.db');
    expect(parseEngineUrl('redis://h:1/?prefix=p').params).toEqual({ prefix: 'p' });
    expect(parseEngineUrl('mqtt://h:1883?prefix=app/events').params).toEqual({ prefix: 'app/events' });
  });

  it('refuses unknown schemes, in-memory SQLite and malformed URLs with SB_CONFIG_INVALID', () => {
    for (const url of ['kafka://h:9092', 'sqlite::memory:', 'sqlite:', 'nats://[bad', 'no-scheme']) {
      let error: unknown;
      try {
        parseEngineUrl(url);
      } catch (caught) {
        error = caught;
      }
      expect(isSwitchboardError(error, 'SB_CONFIG_INVALID'), url).toBe(true);
    }
  });

  it('never puts a password in an error message', () => {
    expect(redact('amqp://guest:secret@h:5672')).toBe('amqp://guest:***@h:5672');
    try {
      parseEngineUrl('kafka://user:secret@h');
    } catch (error) {
      expect(String(error)).not.toContain('secret');
    }
  });
});

describe('connectBroker (embedded engines)', () => {
  it('opens memory: and sqlite: brokers that move a message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-connect-'));
    try {
      for (const url of ['memory:', `sqlite:${join(dir, 'broker.db')}`]) {
        const broker = await connectBroker(url);
        const received = new Promise<string>((resolve) => {
          void broker.subscribe({ topic: 't', group: 'g' }, async (delivery) => {
            await delivery.ack();
            resolve(Buffer.from(delivery.body).toString());
          });
        });
        await broker.publish({ id: 'm1', topic: 't', headers: {}, body: Buffer.from(`via ${url}`) });
        expect(await received).toBe(`via ${url}`);
        await broker.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('awsTarget (sns-sqs: URLs)', () => {
  it('reads an emulator endpoint over plain HTTP, the region and the default bucket', () => {
    expect(parseEngineUrl('sns-sqs://127.0.0.1:4566').engine).toBe('sns-sqs');
    expect(awsTarget('sns-sqs://127.0.0.1:4566?region=eu-west-1')).toMatchObject({
      endpoint: 'http://127.0.0.1:4566',
      region: 'eu-west-1',
      bucket: 'switchboard-claim-checks',
    });
    expect(awsTarget('sns-sqs://localhost').endpoint).toBe('http://localhost:4566');
    expect(awsTarget('sns-sqs://[::1]:4570').endpoint).toBe('http://[::1]:4570');
    expect(awsTarget('sns-sqs://s3.example.internal?tls=true&bucket=b1').endpoint).toBe('https://s3.example.internal:443');
  });

  it('reads AWS itself without a host, the region from the URL or the environment', () => {
    const target = awsTarget('sns-sqs://?region=eu-central-1&bucket=acme-claim-checks&prefix=prod-');
    expect(target.endpoint).toBeUndefined();
    expect(target).toMatchObject({ region: 'eu-central-1', bucket: 'acme-claim-checks', params: { prefix: 'prod-' } });
    const saved = { AWS_REGION: process.env.AWS_REGION, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION };
    try {
      process.env.AWS_REGION = 'ap-south-1';
      expect(awsTarget('sns-sqs://?bucket=b2').region).toBe('ap-south-1');
      delete process.env.AWS_REGION;
      delete process.env.AWS_DEFAULT_REGION;
      expect(awsTarget('sns-sqs://?bucket=b2').region).toBe('us-east-1');
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('refuses AWS without a bucket, credentials in the URL, and other schemes with SB_CONFIG_INVALID', () => {
    for (const url of ['sns-sqs://?region=eu-west-1', 'sns-sqs://AKIA:secret@127.0.0.1:4566', 'nats://127.0.0.1:4222']) {
      let error: unknown;
      try {
        awsTarget(url);
      } catch (caught) {
        error = caught;
      }
      expect(isSwitchboardError(error, 'SB_CONFIG_INVALID'), url).toBe(true);
      expect(String(error)).not.toContain('secret');
    }
    expect(hasBlobStore('sns-sqs://127.0.0.1:4566')).toBe(true);
    expect(hasBlobStore('nats://127.0.0.1:4222')).toBe(false);
  });
});
