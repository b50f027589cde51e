export type {
  Dashboard,
  DashboardDeadLetters,
  DashboardJobs,
  DashboardOptions,
  DashboardPeer,
  DashboardQueue,
  DashboardQueueDepth,
  DashboardReceipts,
  JobLiveState,
  PeerState,
} from './dashboard.js';
export { createDashboard, isLoopback } from './dashboard.js';
export type { ClaimCheckVerdict, EventError, FlowEvent, FlowEventKind, Pattern } from './event.js';
export { claimCheckVerdict, keysOf, parseTraceparent, patternOf } from './event.js';
export type { FlowSummary, JobSummary, MetricsWindow } from './flows.js';
export { FlowIndex } from './flows.js';
export type { FlowRecorder, RecorderOptions, RecorderStats } from './recorder.js';
export { createFlowRecorder, DEFAULT_CAPACITY, DEFAULT_MAX_BYTES, RECORDED_CHANNELS } from './recorder.js';
