import { AssertionError } from 'node:assert';
import type {
  AnyContract,
  BlobStore,
  Broker,
  CallInput,
  CallOutput,
  DeadLetter,
  DeadLetterFilter,
  DeadLetterReason,
  DeadLetterStore,
  DeadLetterSummary,
  EventName,
  Handlers,
  JobRecord,
  JobStore,
  OperationName,
  ProblemDetails,
  ReceiptStore,
} from '@switchboard/core';
import {
  defineContract,
  isFinalReceiptState,
  isFinishedStatus,
  OperationError,
  operationProblemType,
  SwitchboardError,
} from '@switchboard/core';
import type {
  Client,
  ClientOptions,
  HttpJobs,
  HttpService,
  HttpServiceOptions,
  JobsClient,
  JobsClientOptions,
  JobsOptions,
} from '@switchboard/http';
import { createClient, createHttpService, createJobsClient, enableJobs } from '@switchboard/http';
import {
  createMemoryBlobStore,
  createMemoryBroker,
  createMemoryDeadLetterStore,
  createMemoryIdempotencyStore,
  createMemoryJobStore,
  createMemoryReceiptStore,
} from '@switchboard/memory';
import type { EmitArgs, GroupReceipt, Messaging, MessagingOptions, ReceiptDocument } from '@switchboard/messaging';
import { createMessaging, createReceipts, eventsTopic, eventType, messagesTopic, messageType, operationType } from '@switchboard/messaging';
import { createVirtualNetwork, type VirtualNetwork, virtualHost } from './network.js';
import { drive, type TimerDriver, turn, waitFor } from './time.js';

/** Messaging settings a testbed service may change (the broker and stores are the testbed's). */
export type TestMessagingOptions = Omit<MessagingOptions, 'broker' | 'service' | 'receipts' | 'deadLetters' | 'blobs'>;

/** One service of the testbed. */
/** Handlers made once the testbed exists: with its clients of the other services and this service's messaging. */
export type HandlersOf<C extends AnyContract> = (bed: Testbed, messaging: Messaging) => Handlers<C>;

export interface ServiceSpec<C extends AnyContract = AnyContract> {
  /** The contract the service serves: its operations over HTTP, as jobs (with `jobs`) and by message. */
  readonly serves?: C;
  /**
   * The handlers of `serves`: the one object run by the HTTP server, the job runner and the
   * consumer. A function gets the testbed and this service's messaging first, for handlers that
   * call other services (`bed.client(other)`: clients are made lazily, so any order works).
   */
  readonly handlers?: Handlers<C> | HandlersOf<C>;
  /**
   * Let operations run as asynchronous jobs (`enableJobs`, on an in-memory job store): `true` for
   * every operation, or `enableJobs` options without the store (`{ operations: { save: false } }`).
   */
  readonly jobs?: boolean | Omit<JobsOptions, 'store'>;
  /** Operations also arrive by message (`messaging.serve`). Default true when `handlers` are given. */
  readonly serveMessages?: boolean;
  /** Registers what else the service consumes (`handle`, `on`, `serve`), before the testbed starts it. */
  readonly consumes?: (messaging: Messaging) => void;
  /** Messaging settings of this service (over the testbed's `messaging`). */
  readonly messaging?: TestMessagingOptions;
  /** HTTP server settings; `routes` and `interceptors` are added to the testbed's own. */
  readonly http?: Omit<HttpServiceOptions<C>, 'contract' | 'handlers'>;
}

/** The spec of a service serving `C` (`unknown`: one that serves no contract). */
export type CheckedSpec<C> = ServiceSpec<C extends AnyContract ? C : AnyContract>;

export interface TestbedOptions<S extends Record<string, unknown>> {
  /** The services by name (each one's consumer group and CloudEvents `source`), each checked against the contract it serves. */
  readonly services: { readonly [K in keyof S]: ServiceSpec<S[K] extends AnyContract ? S[K] : never> };
  /** Messaging settings of every service (each service's own win): retries, time limits, middleware. */
  readonly messaging?: TestMessagingOptions;
  /** Fake timers to drive (`vi` after `vi.useFakeTimers({ toFake: [...FAKE_TIMERS] })`). */
  readonly timers?: TimerDriver;
  /** How long a waiting helper waits, in ms: real ones, default 10 000; with `timers`, of fake time, default an hour. */
  readonly timeoutMs?: number;
  /** Name of the service the test itself sends and emits as. Default `testbed`. */
  readonly sender?: string;
}

/** The pieces of one running service. */
export interface TestService {
  readonly name: string;
  /** Its base URL on the testbed's network (`http://<name>.test`). */
  readonly url: string;
  readonly messaging: Messaging;
  readonly http: HttpService;
  readonly jobs: HttpJobs | undefined;
  readonly receipts: ReceiptStore;
  readonly deadLetters: DeadLetterStore;
  readonly jobStore: JobStore | undefined;
}

/** How a call reaches the service: the same operation, four ways (`emit` is the fourth, for events). */
export type Via = 'http' | 'job' | 'message';

/** What a call ended with, whichever way it went: the typed output, or the problem (RFC 9457). */
export type CallOutcome<C extends AnyContract, K extends OperationName<C>> =
  | (CallTrail & { readonly ok: true; readonly value: CallOutput<C, K> })
  | (CallTrail & { readonly ok: false; readonly error: ProblemDetails });

export interface CallTrail {
  readonly via: Via;
  /** `job`: the job's id. */
  readonly jobId?: string;
  /** `message`: the MessageId, and the receipt of the service that ran it. */
  readonly messageId?: string;
  readonly receipt?: ReceiptDocument;
  /** `message`, when it was dead-lettered. */
  readonly deadLetter?: DeadLetter;
}

export interface CallVia {
  readonly via?: Via;
  /** Service whose messaging sends a `message` call. Default: the testbed's sender. */
  readonly from?: string;
  /** How long to wait for the end (job, receipt). Default: the testbed's `timeoutMs`. */
  readonly timeoutMs?: number;
}

export interface ReceiptWait {
  /** The CloudEvents `source` (the sender's service name). Default: any single source. */
  readonly source?: string;
  /** Groups that must reach a final state. Default: every group that consumes the message's type. */
  readonly groups?: readonly string[];
  readonly timeoutMs?: number;
}

export interface DeadLetterWait {
  readonly reason?: DeadLetterReason;
  readonly group?: string;
  readonly source?: string;
  readonly timeoutMs?: number;
}

/** Every service of a test wired in one process: broker, stores and HTTP all in memory. */
export interface Testbed {
  readonly network: VirtualNetwork;
  readonly broker: Broker;
  /** The blob store every service shares (claim check). */
  readonly blobs: BlobStore;
  /** The service the test sends as (`sender`). */
  readonly sender: string;
  service(name: string): TestService;
  /** Base URL of a service, for raw requests through `network.dispatcher`. */
  url(service: string): string;
  /** The typed HTTP client of the service serving `contract` (one per contract, closed with the testbed). */
  client<C extends AnyContract>(contract: C, options?: Partial<ClientOptions>): Client<C>;
  /** The typed jobs client of the service serving `contract`. */
  jobs<C extends AnyContract>(contract: C, options?: Partial<JobsClientOptions>): JobsClient<C>;
  /** A service's messaging (default: the sender's), to `send`, `invoke` and `emit` as that service. */
  messaging(service?: string): Messaging;
  /**
   * Calls an operation the way `via` says — `http` (sync), `job` (202 then the status monitor),
   * `message` (through the broker, the outcome read from the receipt) — and answers the same
   * outcome shape, so one test can check the same call all three ways.
   */
  call<C extends AnyContract, K extends OperationName<C>>(
    contract: C,
    operation: K,
    input: CallInput<C, K>,
    options?: CallVia,
  ): Promise<CallOutcome<C, K>>;
  /**
   * Emits an event as the service serving `contract` (the sender when none does) and waits until
   * every group that consumes it handled it (processed or dead-lettered).
   */
  emit<C extends AnyContract, K extends EventName<C>>(
    contract: C,
    event: K,
    ...args: EmitArgs<C, K>
  ): Promise<{ readonly messageId: string; readonly receipt: ReceiptDocument }>;
  /** Waits until every group that consumes the message (or `groups`) reached a final state; every service's receipts, merged. */
  receipt(messageId: string, options?: ReceiptWait): Promise<ReceiptDocument>;
  /** Every service's receipts for the MessageId now, merged (`undefined`: none yet). */
  receiptNow(messageId: string, options?: { readonly source?: string }): Promise<ReceiptDocument | undefined>;
  /** Waits until the job finished (succeeded, failed or canceled) and answers its record. */
  job(jobId: string, options?: { readonly timeoutMs?: number }): Promise<JobRecord>;
  /**
   * Waits for the dead letter of a MessageId (in any service), with its bytes and attempts; with
   * `reason`, fails with an `AssertionError` naming the reason, detail and last error it has instead.
   */
  deadLetter(messageId: string, options?: DeadLetterWait): Promise<DeadLetter>;
  /** Every service's dead letters now, matching `filter`. */
  deadLetters(filter?: DeadLetterFilter): Promise<DeadLetterSummary[]>;
  /** Moves fake time (`timers`) forward by `ms`, running what falls due. */
  advance(ms: number): Promise<void>;
  /**
   * Settles `work` (your own `jobs.wait`, a client call that retries) while fake timers run: time
   * jumps to the next timer whenever the services are idle. Without `timers`, just `work`.
   */
  drive<T>(work: Promise<T>): Promise<T>;
  /** Lets the services run for a few event-loop turns (handy before asserting that nothing happened). */
  settle(turns?: number): Promise<void>;
  close(): Promise<void>;
}

interface Registration {
  readonly group: string;
  readonly topic: string;
  readonly types: ReadonlySet<string>;
  /** With a CESQL filter a group may skip an event without a receipt: not awaited. */
  readonly optional: boolean;
}

interface Running extends TestService {
  readonly group: string;
  readonly serves: AnyContract | undefined;
}

const clock = (): number => Date.now();

/**
 * Wires the services in memory and starts them: one memory broker, per service a memory receipt
 * store (the inbox), dead-letter store, idempotency store and (with `jobs`) job store, one shared
 * memory blob store, and each service's HTTP server on a socketless network. Every store reads
 * `Date.now()` when it needs the time, so fake timers move it.
 */
export async function createTestbed<S extends Record<string, unknown>>(options: TestbedOptions<S>): Promise<Testbed> {
  const network = createVirtualNetwork();
  const broker = createMemoryBroker();
  const blobs = createMemoryBlobStore({ name: 'testbed', clock });
  const timers = options.timers;
  const timeoutMs = options.timeoutMs ?? (timers === undefined ? 10_000 : 3_600_000);
  const senderName = options.sender ?? 'testbed';
  const services = new Map<string, Running>();
  const registrations: Registration[] = [];
  const clients = new Map<string, { close(): Promise<void> }>();
  const closers: (() => Promise<void>)[] = [];

  const register = (group: string, kind: 'handle' | 'serve' | 'on', args: readonly unknown[]): void => {
    const contract = args[0] as AnyContract;
    const name = args[1];
    if (kind === 'serve') {
      const types = new Set(Object.keys(contract.operations).map((op) => operationType(contract, op)));
      registrations.push({ group, topic: messagesTopic(contract), types, optional: false });
    } else if (kind === 'handle') {
      registrations.push({ group, topic: messagesTopic(contract), types: new Set([messageType(contract, String(name))]), optional: false });
    } else {
      const pattern = String(name);
      const names = Object.keys(contract.events).filter((event) =>
        pattern === '*' ? true : pattern.endsWith('.*') ? event.startsWith(pattern.slice(0, -1)) : event === pattern,
      );
      const filter = (args[3] as { filter?: string } | undefined)?.filter;
      registrations.push({
        group,
        topic: eventsTopic(contract),
        types: new Set(names.map((event) => eventType(contract, event))),
        optional: filter !== undefined,
      });
    }
  };

  /** The messaging, with `handle`, `serve` and `on` noted so the testbed knows which groups consume what. */
  const recording = (messaging: Messaging): Messaging => {
    const proxy: Messaging = new Proxy(messaging, {
      get(target, property) {
        if (property === 'handle' || property === 'serve' || property === 'on') {
          return (...args: unknown[]) => {
            (target[property] as (...a: unknown[]) => unknown).apply(target, args);
            register(target.group, property, args);
            return proxy;
          };
        }
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    return proxy;
  };

  const open = async (name: string, spec: ServiceSpec): Promise<void> => {
    if (services.has(name)) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `Service ${name} is declared twice` });
    const receipts = createMemoryReceiptStore({ clock });
    const deadLetters = createMemoryDeadLetterStore({ clock });
    const idempotency = createMemoryIdempotencyStore({ clock });
    const messaging = recording(
      // A message call's output is read back from the receipt: keep it whole (the default keeps 4096 characters).
      createMessaging({
        resultLimit: 1024 * 1024,
        ...options.messaging,
        ...spec.messaging,
        broker,
        service: name,
        receipts,
        deadLetters,
        blobs,
      }),
    );
    const contract = spec.serves ?? defineContract({ name, operations: {} });
    const given = spec.handlers as Handlers<AnyContract> | HandlersOf<AnyContract> | undefined;
    const handlers = (typeof given === 'function' ? given(bed, messaging) : (given ?? {})) as Handlers<AnyContract>;
    if (spec.serves !== undefined && given !== undefined && spec.serveMessages !== false) messaging.serve(spec.serves, handlers);
    spec.consumes?.(messaging);
    let jobStore: JobStore | undefined;
    let jobs: HttpJobs | undefined;
    if (spec.jobs !== undefined && spec.jobs !== false) {
      if (spec.serves === undefined)
        throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `Service ${name} runs jobs but serves no contract` });
      jobStore = createMemoryJobStore({ clock });
      jobs = enableJobs(spec.serves, { ...(spec.jobs === true ? {} : spec.jobs), store: jobStore });
    }
    const httpOptions = spec.http ?? {};
    const http = createHttpService({
      idempotency: { store: idempotency },
      ...httpOptions,
      contract,
      handlers,
      routes: [...messaging.routes(), ...(jobs?.routes ?? []), ...(httpOptions.routes ?? [])],
      interceptors: [...(jobs?.interceptors ?? []), ...(httpOptions.interceptors ?? [])],
    } as HttpServiceOptions<AnyContract>);
    jobs?.start(http);
    const url = network.mount(name, http.handle);
    services.set(name, {
      name,
      url,
      group: messaging.group,
      serves: spec.serves,
      messaging,
      http,
      jobs,
      receipts,
      deadLetters,
      jobStore,
    });
    closers.push(async () => {
      await jobs?.close({ timeoutMs: 1_000 });
      await http.close({ timeoutMs: 1_000 });
      network.unmount(name);
      await messaging.close();
      await Promise.all([receipts.close(), deadLetters.close(), idempotency.close?.(), jobStore?.close()]);
    });
  };

  const service = (name: string): Running => {
    const found = services.get(name);
    if (found === undefined)
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: `No service ${name} in this testbed (${[...services.keys()].join(', ')})`,
      });
    return found;
  };

  /** The URL of the service declared to serve `contract` (known before it is opened). */
  const urlOf = (contract: AnyContract): string => {
    for (const [name, spec] of Object.entries(options.services) as [string, ServiceSpec][]) {
      if (spec.serves?.name === contract.name) return `http://${virtualHost(name)}`;
    }
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `No service of this testbed serves contract ${contract.name}` });
  };

  const servingOf = (contract: AnyContract): Running => {
    for (const running of services.values()) if (running.serves?.name === contract.name) return running;
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `No service of this testbed serves contract ${contract.name}` });
  };

  const expectedGroups = (topic: string, type: string): { required: string[]; optional: string[] } => {
    const required = new Set<string>();
    const optional = new Set<string>();
    for (const registration of registrations) {
      if (registration.topic !== topic || !registration.types.has(type)) continue;
      (registration.optional ? optional : required).add(registration.group);
    }
    for (const group of required) optional.delete(group);
    return { required: [...required], optional: [...optional] };
  };

  const receiptNow = async (messageId: string, query: { readonly source?: string } = {}): Promise<ReceiptDocument | undefined> => {
    const groups: GroupReceipt[] = [];
    let source: string | undefined;
    for (const running of services.values()) {
      const document = await createReceipts(running.receipts).get(messageId, query);
      if (document === undefined) continue;
      if (source !== undefined && document.source !== source) {
        throw new SwitchboardError('SB_CONFLICT', { detail: `More than one source sent MessageId ${messageId}: pass \`source\`` });
      }
      source = document.source;
      groups.push(...document.groups);
    }
    if (source === undefined) return undefined;
    return { messageId, source, done: groups.every((group) => isFinalReceiptState(group.state)), groups };
  };

  const receipt = (
    messageId: string,
    wait: ReceiptWait & { readonly topic?: string; readonly type?: string } = {},
  ): Promise<ReceiptDocument> => {
    let last: ReceiptDocument | undefined;
    let expected: readonly string[] | undefined = wait.groups;
    if (expected === undefined && wait.topic !== undefined && wait.type !== undefined)
      expected = expectedGroups(wait.topic, wait.type).required;
    return waitFor(
      async () => {
        last = await receiptNow(messageId, wait.source === undefined ? {} : { source: wait.source });
        if (expected !== undefined && expected.length === 0) {
          return last ?? { messageId, source: wait.source ?? senderName, done: true, groups: [] };
        }
        if (last === undefined) return undefined;
        let groups = expected;
        if (groups === undefined) {
          const known = last.groups.find((group) => group.topic !== undefined && group.type !== undefined);
          if (known?.topic === undefined || known.type === undefined) return undefined;
          groups = expectedGroups(known.topic, known.type).required;
        }
        const document = last;
        const final = (group: string) => document.groups.some((g) => g.group === group && isFinalReceiptState(g.state));
        if (!groups.every(final) || !document.groups.every((g) => isFinalReceiptState(g.state))) return undefined;
        // A receipt is final before its dead letter is listed? No: the dead letter is stored first.
        return { ...document, done: true };
      },
      {
        what: `the receipt of ${messageId}${expected === undefined ? '' : ` in ${expected.join(', ')}`}`,
        timeoutMs: wait.timeoutMs ?? timeoutMs,
        timers,
        seen: () => (last === undefined ? 'no receipt' : last.groups.map((g) => `${g.group}: ${g.state} after ${g.attempts}`).join(', ')),
      },
    );
  };

  const findDeadLetters = async (filter: DeadLetterFilter): Promise<DeadLetterSummary[]> => {
    const found: DeadLetterSummary[] = [];
    for (const running of services.values()) {
      let cursor: string | undefined;
      do {
        const page = await running.deadLetters.list({ ...filter, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
        found.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor !== undefined);
    }
    return found.sort((a, b) => a.deadLetteredAt - b.deadLetteredAt);
  };

  const deadLetterOf = async (messageId: string, wait: DeadLetterWait = {}): Promise<DeadLetter> => {
    let last: DeadLetterSummary | undefined;
    const entry = await waitFor(
      async () => {
        const found = await findDeadLetters({
          messageId,
          ...(wait.group === undefined ? {} : { group: wait.group }),
          ...(wait.source === undefined ? {} : { source: wait.source }),
        });
        last = found[found.length - 1];
        return last;
      },
      { what: `a dead letter of ${messageId}`, timeoutMs: wait.timeoutMs ?? timeoutMs, timers },
    );
    const owner = service(groupOwner(entry.group));
    const full = await owner.deadLetters.get(entry.id);
    if (full === undefined) throw new SwitchboardError('SB_NOT_FOUND', { detail: `Dead letter ${entry.id} vanished` });
    if (wait.reason !== undefined && full.reason !== wait.reason) {
      const lastError = full.attempts[full.attempts.length - 1]?.error;
      throw new AssertionError({
        message: `Dead letter of ${messageId} in ${full.group}: reason ${full.reason}, expected ${wait.reason}${
          full.detail === undefined ? '' : ` (${full.detail})`
        }${lastError === undefined ? '' : `; last error ${lastError.code}: ${lastError.detail ?? lastError.title}`}`,
        actual: full.reason,
        expected: wait.reason,
        operator: 'strictEqual',
      });
    }
    return full;
  };

  const groupOwner = (group: string): string => {
    for (const running of services.values()) if (running.group === group) return running.name;
    return group;
  };

  const clientOf = <T extends { close(): Promise<void> }>(key: string, make: () => T): T => {
    let client = clients.get(key) as T | undefined;
    if (client === undefined) {
      client = make();
      clients.set(key, client);
    }
    return client;
  };

  const bed: Testbed = {
    network,
    broker,
    blobs,
    sender: senderName,
    service,
    url(name) {
      if (!Object.hasOwn(options.services, name) && name !== senderName) service(name);
      return `http://${virtualHost(name)}`;
    },
    client<C extends AnyContract>(contract: C, clientOptions?: Partial<ClientOptions>): Client<C> {
      const make = () => createClient(contract, { ...clientOptions, baseUrl: urlOf(contract), dispatcher: network.dispatcher });
      return clientOptions === undefined
        ? clientOf(`client:${contract.name}`, make)
        : clientOf(`client:${contract.name}:${clients.size}`, make);
    },
    jobs<C extends AnyContract>(contract: C, clientOptions?: Partial<JobsClientOptions>): JobsClient<C> {
      const make = () =>
        createJobsClient(contract, {
          ...clientOptions,
          wait: { transport: 'long-poll', minIntervalMs: 1, ...clientOptions?.wait },
          baseUrl: urlOf(contract),
          dispatcher: network.dispatcher,
        });
      return clientOptions === undefined
        ? clientOf(`jobs:${contract.name}`, make)
        : clientOf(`jobs:${contract.name}:${clients.size}`, make);
    },
    messaging: (name = senderName) => service(name).messaging,
    async call<C extends AnyContract, K extends OperationName<C>>(
      contract: C,
      operation: K,
      input: CallInput<C, K>,
      via: CallVia = {},
    ): Promise<CallOutcome<C, K>> {
      const how = via.via ?? 'http';
      if (how === 'http') {
        const result = await drive(bed.client(contract).result(operation, input), timers);
        return result.ok ? { via: how, ok: true, value: result.value } : { via: how, ok: false, error: problemOf(contract, result.error) };
      }
      if (how === 'job') {
        const jobs = bed.jobs(contract);
        const submitted = await drive(jobs.submit(operation, input), timers);
        try {
          const value = await drive(jobs.wait(submitted, { timeoutMs: via.timeoutMs ?? timeoutMs }), timers);
          return { via: how, jobId: submitted.jobId, ok: true, value };
        } catch (error) {
          return { via: how, jobId: submitted.jobId, ok: false, error: problemOf(contract, error) };
        }
      }
      const from = via.from ?? senderName;
      const { messageId } = await service(from).messaging.invoke(contract, operation, input);
      const target = servingOf(contract);
      const document = await receipt(messageId, {
        source: from,
        groups: [target.group],
        ...(via.timeoutMs === undefined ? {} : { timeoutMs: via.timeoutMs }),
      });
      const mine = document.groups.find((group) => group.group === target.group);
      if (mine?.state === 'processed') {
        const value = (mine.result === undefined ? undefined : JSON.parse(mine.result)) as CallOutput<C, K>;
        return { via: how, messageId, receipt: document, ok: true, value };
      }
      const deadLetter = await deadLetterOf(messageId, { group: target.group, source: from });
      const error = mine?.error ?? new SwitchboardError('SB_INTERNAL', { detail: `No error on the receipt of ${messageId}` }).toProblem();
      return { via: how, messageId, receipt: document, deadLetter, ok: false, error };
    },
    async emit<C extends AnyContract, K extends EventName<C>>(contract: C, event: K, ...args: EmitArgs<C, K>) {
      let from = senderName;
      for (const running of services.values()) if (running.serves?.name === contract.name) from = running.name;
      const { messageId } = await service(from).messaging.emit(contract, event, ...args);
      const document = await receipt(messageId, { source: from, topic: eventsTopic(contract), type: eventType(contract, event) });
      return { messageId, receipt: document };
    },
    receipt: (messageId, wait) => receipt(messageId, wait),
    receiptNow,
    async job(jobId, wait = {}) {
      let last: JobRecord | undefined;
      return waitFor(
        async () => {
          for (const running of services.values()) {
            if (running.jobStore === undefined) continue;
            const lookup = await running.jobStore.get(jobId);
            if (lookup.state !== 'found') continue;
            last = lookup.job;
            return isFinishedStatus(lookup.job.status) ? lookup.job : undefined;
          }
          return undefined;
        },
        {
          what: `the end of job ${jobId}`,
          timeoutMs: wait.timeoutMs ?? timeoutMs,
          timers,
          seen: () => (last === undefined ? 'no such job' : `${last.status} after ${last.attempts} attempt(s)`),
        },
      );
    },
    deadLetter: deadLetterOf,
    deadLetters: (filter = {}) => findDeadLetters(filter),
    async advance(ms) {
      if (timers === undefined) {
        throw new SwitchboardError('SB_CONFIG_INVALID', {
          detail: 'advance needs fake timers: createTestbed({ timers: vi }) after vi.useFakeTimers()',
        });
      }
      await timers.advanceTimersByTimeAsync(ms);
      await turn();
    },
    async settle(turns = 5) {
      for (let i = 0; i < turns; i++) await turn();
    },
    drive: (work) => drive(work, timers),
    close() {
      // Graceful shutdown waits on timers (drain grace periods): under fake timers they are driven too.
      return drive(
        (async () => {
          for (const client of clients.values()) await client.close().catch(() => undefined);
          clients.clear();
          for (const close of closers.reverse()) await close();
          closers.length = 0;
          await network.close();
          await broker.close();
          await blobs.close();
        })(),
        timers,
      );
    },
  };
  try {
    for (const [name, spec] of Object.entries(options.services) as [string, ServiceSpec][]) await open(name, spec);
    if (!services.has(senderName)) await open(senderName, {});
    for (const service of services.values()) await service.messaging.start();
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await network.close();
    await broker.close();
    throw error;
  }

  return bed;
}

/** The problem document of what a client threw, the same shape whichever way the call went. */
function problemOf(contract: AnyContract, error: unknown): ProblemDetails {
  if (error instanceof OperationError) {
    return {
      type: operationProblemType(contract.name, error.code),
      title: error.code,
      status: error.status,
      code: error.code,
      ...(error.detail === undefined ? {} : { detail: error.detail }),
      ...(error.data === undefined ? {} : { data: error.data }),
    };
  }
  if (error instanceof SwitchboardError) {
    const problem = error.toProblem();
    // A failed job carries the handler's own problem: answer that one, as the other ways do.
    const inner = problem.problem as ProblemDetails | undefined;
    return error.code === 'SB_JOB_FAILED' && inner !== undefined && typeof inner.code === 'string' ? inner : problem;
  }
  throw error;
}
