/**
 * The worker-thread side of `CpuPool`: piscina loads this module in each of
 * its threads and calls the default export once per task. It only dispatches
 * to the task registry in `cpuTasks.ts`, so the pool and `runInline` share one
 * implementation. It is TypeScript run as-is: the threads get the tsx loader
 * from their execArgv (see `cpuPool.ts`).
 */
import { runCpuTask, type CpuTaskName } from "./cpuTasks.ts";

export interface CpuTaskMessage {
  task: CpuTaskName;
  input: unknown;
}

export default function handleCpuTask({ task, input }: CpuTaskMessage): unknown {
  return runCpuTask(task, input);
}
