#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { openSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { ControlError, type TuneArgs } from '../control/protocol.js';
import { runPoolDaemon } from '../daemon/pool-daemon.js';
import { isMounted, lazyUnmount } from '../fuse/mount.js';
import { CHECKSUM_ALGORITHMS, isChecksumAlgorithm } from '../integrity/algorithms.js';
import { readConfigFile, resolveConfig } from '../config/load.js';
import { PRESET_NAMES, type PresetName } from '../config/schema.js';
import { LOG_LEVELS, type LogLevel } from '../observability/log-levels.js';
import { parseListen } from '../util/listen.js';
import { configureLogging, type LogFormat } from '../observability/logger.js';
import { PoolBusyError, readLockOwner } from '../pool/lock.js';
import { Pool } from '../pool/pool.js';
import { DEFAULT_TIER, EXTENT_SIZE_RULE, isExtentSize, TIERS } from '../config/rules.js';
import { formatPolicy, parsePolicy } from '../redundancy/policy.js';
import { UsageError } from '../util/errors.js';
import { formatBytes, parseSize } from '../util/units.js';
import { PRIVATE_FILE, restrictUmask } from '../util/private-files.js';
import { emit, isJsonOutput, onPool, setJsonOutput } from './on-pool.js';
import { registerConfigCommands } from './config-commands.js';
import { registerOpsCommands } from './ops-commands.js';
import { registerVolumeCommands } from './volume-cli.js';
import { withTrace } from '../observability/trace.js';
import { renderDisks, renderDrain, renderFsck, renderRebuild, renderScrub, renderStatus } from './render.js';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

function sizeOption(v: string, what: string): number {
  return parseSize(v, what);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function buildCli(): Command {
  const program = new Command('dynamicfs')
    .description('DynamicFS: pool directories and disks into one filesystem with replication or erasure coding')
    .version('0.1.0')
    .option('--json', 'machine-readable output')
    .showHelpAfterError()
    .exitOverride();
  program.hook('preAction', (cmd) => {
    setJsonOutput(Boolean(cmd.opts().json || cmd.optsWithGlobals().json));
  });

  program
    .command('init')
    .description('create a pool: POOL is a directory for its identity, metadata and control files')
    .argument('<pool>', 'pool directory (created if missing, must be empty)')
    .option('--redundancy <policy>', 'default policy: replication:N or erasure:k+m')
    .option('--extent-size <size>', 'extent size, e.g. 1MiB')
    .option('--checksum <algorithm>', `fragment checksum: ${CHECKSUM_ALGORITHMS.join(', ')}`)
    .option('--config <file>', "YAML configuration (a preset and overrides, see 'dynamicfs config show'); stored in the pool")
    .addOption(new Option('--preset <name>', 'configuration preset (when no --config names one)').choices([...PRESET_NAMES]))
    .option('--json', 'machine-readable output')
    .action(
      async (poolDir: string, o: { redundancy?: string; extentSize?: string; checksum?: string; config?: string; preset?: PresetName }) => {
        const file = o.config ? await readConfigFile(o.config) : {};
        if (o.preset) file.preset ??= o.preset;
        const storage = resolveConfig(file, { source: o.config ?? 'preset' }).storage;
        const policy = parsePolicy(o.redundancy ?? storage.redundancy);
        const extentSize = o.extentSize ? sizeOption(o.extentSize, '--extent-size') : storage.extent_size;
        const checksum = o.checksum ?? storage.checksum;
        if (!isChecksumAlgorithm(checksum))
          throw new UsageError(`--checksum '${checksum}' is not one of ${CHECKSUM_ALGORITHMS.join(', ')}`);
        if (!isExtentSize(extentSize)) throw new UsageError(`--extent-size ${extentSize} must be ${EXTENT_SIZE_RULE}`);
        const id = await Pool.create(poolDir, { extentSize, defaultPolicy: policy, checksum }, file);
        emit(
          {
            pool: id,
            dir: path.resolve(poolDir),
            redundancy: formatPolicy(policy),
            extentSize,
            checksum,
            preset: file.preset ?? 'production',
          },
          `created pool ${id.name} (${id.poolId}) in ${path.resolve(poolDir)}: ${formatPolicy(policy)}, extent ${formatBytes(extentSize)}, checksum ${checksum}, preset ${file.preset ?? 'production'}`,
        );
      },
    );

  program
    .command('add-disk')
    .description('add a directory (or a mounted device) to the pool as a disk')
    .argument('<pool>')
    .argument('<disk>', 'directory that will hold fragments')
    .addOption(new Option('--tier <tier>', 'storage tier').choices([...TIERS]).default(DEFAULT_TIER))
    .option('--capacity <size>', 'cap the bytes this disk may hold (several disks can share one filesystem)')
    .option(
      '--allow-any-path',
      "add it even outside security.disk_roots or in a system directory (never inside a pool's mount or directory)",
    )
    .option('--failure-domain <name>', 'the failure domain it is in (an enclosure, a controller), instead of the device found under it')
    .option('--allow-shared-domain', 'add it although it shares a failure domain with a disk of the pool (capacity, not redundancy)')
    .option('--json', 'machine-readable output')
    .action(
      async (
        poolDir: string,
        disk: string,
        o: { tier: string; capacity?: string; allowAnyPath?: boolean; failureDomain?: string; allowSharedDomain?: boolean },
      ) => {
        const capacity = o.capacity ? sizeOption(o.capacity, '--capacity') : null;
        const r = await onPool(poolDir, 'add-disk', {
          disk: path.resolve(disk),
          tier: o.tier,
          capacity,
          allowAnyPath: o.allowAnyPath === true,
          failureDomain: o.failureDomain,
          allowSharedDomain: o.allowSharedDomain === true,
        });
        if (r.warning && !isJsonOutput()) process.stderr.write(`dynamicfs: warning: ${r.warning}\n`);
        emit(
          r,
          r.recognised
            ? `recognised disk ${r.disk.id} at its new path ${r.disk.path}`
            : `added disk ${r.disk.id} at ${r.disk.path} (failure domain ${r.disk.failureDomain})`,
        );
      },
    );

  program
    .command('set-failure-domain')
    .description("name the failure domain a disk is in (an enclosure, a controller), or 'auto' to find it from its devices again")
    .argument('<pool>')
    .argument('<disk>', 'disk id or path')
    .argument('<domain>', "a name, or 'auto'")
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, disk: string, domain: string) => {
      const r = await onPool(poolDir, 'set-failure-domain', { disk, domain });
      if (r.warning && !isJsonOutput()) process.stderr.write(`dynamicfs: warning: ${r.warning}\n`);
      emit(r, `disk ${r.disk} is in failure domain ${r.failureDomain} (${r.named ? 'named' : `found: ${r.device}`})`);
    });

  program
    .command('list-disks')
    .description('disks with tier, capacity, used, health and error counts')
    .argument('<pool>')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string) => {
      const r = await onPool(poolDir, 'list-disks', {});
      emit(r, renderDisks(r.disks));
    });

  program
    .command('status')
    .description('pool health, extents by health, capacity, disks, and files with lost ranges')
    .argument('<pool>')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string) => {
      const r = await onPool(poolDir, 'status', {});
      emit(r, renderStatus(r));
      if (r.health === 'critical') process.exitCode = EXIT_FAILURE;
    });

  program
    .command('set-disk-health')
    .description('set a disk state by hand: healthy, degraded, suspect, draining, failed')
    .argument('<pool>')
    .argument('<disk>', 'disk id or path')
    .argument('<state>')
    .option('--reason <text>', 'why (recorded with the transition)')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, disk: string, state: string, o: { reason?: string }) => {
      const r = await onPool(poolDir, 'set-disk-health', { disk, state, reason: o.reason });
      emit(r, `disk ${r.disk}: ${r.from} -> ${r.to}`);
    });

  program
    .command('tune')
    .description('show or change self-healing settings: auto-rebuild, rebuild limits, disk health thresholds')
    .argument('<pool>')
    .addOption(new Option('--auto-rebuild <on|off>', 'rebuild when a disk turns failed').choices(['on', 'off']))
    .option('--rebuild-concurrency <n>', 'extents rebuilt at once')
    .option('--rebuild-bandwidth <size>', 'bytes written per second by a rebuild at most (0: unlimited)')
    .option('--errors-suspect <n>', 'I/O errors that make a healthy disk suspect')
    .option('--read-errors-failed <n>', 'read errors that make a disk failed')
    .option('--slow-io-ms <ms>', 'a fragment operation slower than this is slow')
    .option('--slow-ops-degraded <n>', 'slow operations that make a healthy disk degraded')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, o: Record<string, string | undefined>) => {
      const asInt = (key: string): number | undefined => {
        const v = o[key];
        if (v === undefined) return undefined;
        if (!/^\d+$/.test(v)) throw new UsageError(`--${key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} '${v}' is not a whole number`);
        return Number(v);
      };
      const args: TuneArgs = {
        'auto-rebuild': o.autoRebuild === undefined ? undefined : o.autoRebuild === 'on',
        'rebuild-concurrency': asInt('rebuildConcurrency'),
        'rebuild-bandwidth':
          o.rebuildBandwidth === undefined
            ? undefined
            : o.rebuildBandwidth === '0'
              ? 0
              : sizeOption(o.rebuildBandwidth, '--rebuild-bandwidth'),
        'errors-suspect': asInt('errorsSuspect'),
        'read-errors-failed': asInt('readErrorsFailed'),
        'slow-io-ms': asInt('slowIoMs'),
        'slow-ops-degraded': asInt('slowOpsDegraded'),
      };
      const r = await onPool(poolDir, 'tune', args);
      emit(
        r,
        [
          `auto-rebuild        ${r.autoRebuild ? 'on' : 'off'}`,
          `rebuild             concurrency ${r.rebuild.concurrency}, bandwidth ${r.rebuild.bandwidthBytes ? formatBytes(r.rebuild.bandwidthBytes) + '/s' : 'unlimited'}`,
          ...Object.entries(r.thresholds).map(([k, v]) => `${k.padEnd(19)} ${v}`),
        ].join('\n'),
      );
    });

  program
    .command('probe-disks')
    .description('write, fsync, read back and remove a probe file on every disk; check identity and free space')
    .argument('<pool>')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string) => {
      const r = await onPool(poolDir, 'probe-disks', {});
      emit(
        r,
        r.probes
          .map(
            (p) =>
              `${p.disk} ${p.path}: ${p.ok ? 'ok' : 'FAILED: ' + p.problems.join('; ')} (${p.latencyMs} ms)${p.transition ? ` -> ${p.transition.to}` : ''}`,
          )
          .join('\n'),
      );
      if (r.probes.some((p) => !p.ok)) process.exitCode = EXIT_FAILURE;
    });

  program
    .command('set-policy')
    .description("set the redundancy policy of a top-level directory ('/' sets the pool default)")
    .argument('<pool>')
    .argument('<path>', "directory inside the pool, e.g. /databases, or '/'")
    .argument('<policy>', 'replication:N or erasure:k+m')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, p: string, policy: string) => {
      parsePolicy(policy);
      const r = await onPool(poolDir, 'set-policy', { path: p, policy });
      emit(r, `${p}: ${policy} for new data`);
    });

  program
    .command('scrub')
    .description('read and verify every fragment (parity included); --repair rewrites bad ones from the good')
    .argument('<pool>')
    .option('--repair', 'rewrite bad and missing fragments')
    .option('--bandwidth <size>', 'read at most this many bytes per second, e.g. 100MiB')
    .option('--restart', 'start over instead of resuming an interrupted scrub')
    .option('--pause', 'pause the scrub running on a mounted pool')
    .option('--resume', 'resume a paused scrub')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, o: { repair?: boolean; bandwidth?: string; restart?: boolean; pause?: boolean; resume?: boolean }) => {
      if (o.pause || o.resume) {
        if (o.pause && o.resume) throw new UsageError('--pause and --resume exclude each other');
        const c = await onPool(poolDir, 'scrub-control', { action: o.pause ? 'pause' : 'resume' });
        emit(c, c.paused ? 'scrub paused' : 'scrub resumed');
        return;
      }
      const bandwidth = o.bandwidth ? sizeOption(o.bandwidth, '--bandwidth') : undefined;
      const r = await onPool(poolDir, 'scrub', { repair: o.repair === true, bandwidth, restart: o.restart === true });
      emit(r, renderScrub(r));
      if (r.extents.unrecoverable > 0 || r.issues.some((i) => !i.repaired)) process.exitCode = EXIT_FAILURE;
    });

  program
    .command('rebuild')
    .description('re-protect every extent that lost fragments, most at risk first')
    .argument('<pool>')
    .option('--concurrency <n>', 'extents rebuilt at once (default: the pool setting, 8)')
    .option('--bandwidth <size>', 'write at most this many bytes per second (default: the pool setting, unlimited)')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, o: { concurrency?: string; bandwidth?: string }) => {
      const concurrency = o.concurrency === undefined ? undefined : Number(o.concurrency);
      if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)) {
        throw new UsageError(`--concurrency '${o.concurrency}' must be a whole number from 1 to 64`);
      }
      const bandwidth = o.bandwidth ? sizeOption(o.bandwidth, '--bandwidth') : undefined;
      const r = await onPool(poolDir, 'rebuild', { concurrency, bandwidth });
      emit(r, renderRebuild(r));
      if (r.extents.failed > 0) process.exitCode = EXIT_FAILURE;
    });

  program
    .command('remove-disk')
    .description('drain a disk (every fragment copied elsewhere and verified first), then remove it')
    .argument('<pool>')
    .argument('<disk>', 'disk id or path')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, disk: string) => {
      const r = await onPool(poolDir, 'remove-disk', { disk });
      emit(r, renderDrain(r));
      if (!r.removed) process.exitCode = EXIT_FAILURE;
    });

  program
    .command('replace-disk')
    .description('add NEW (same tier and cap as OLD), then drain and remove OLD')
    .argument('<pool>')
    .argument('<old>', 'disk id or path')
    .argument('<new>', 'directory of the new disk')
    .option('--allow-any-path', 'the new disk may be outside security.disk_roots or in a system directory')
    .option('--failure-domain <name>', "the new disk's failure domain (default: the old disk's name, else found from its devices)")
    .option('--allow-shared-domain', 'the new disk may share a failure domain with another disk of the pool')
    .option('--json', 'machine-readable output')
    .action(
      async (
        poolDir: string,
        oldDisk: string,
        newDisk: string,
        o: { allowAnyPath?: boolean; failureDomain?: string; allowSharedDomain?: boolean },
      ) => {
        const r = await onPool(poolDir, 'replace-disk', {
          old: oldDisk,
          new: path.resolve(newDisk),
          allowAnyPath: o.allowAnyPath === true,
          failureDomain: o.failureDomain,
          allowSharedDomain: o.allowSharedDomain === true,
        });
        emit(r, `added ${r.added.id} at ${r.added.path}\n${renderDrain(r.removed)}`);
        if (!r.removed.removed) process.exitCode = EXIT_FAILURE;
      },
    );

  program
    .command('fsck')
    .description('cross-check metadata against fragment files; exit 0 when clean, 1 when not')
    .argument('<pool>')
    .option('--repair', 'delete orphan fragments older than the grace period')
    .option('--grace <seconds>', 'age before an orphan fragment may be reclaimed', '600')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, o: { repair?: boolean; grace: string }) => {
      const grace = Number(o.grace);
      if (!Number.isFinite(grace) || grace < 0) throw new UsageError(`--grace '${o.grace}' must be a number of seconds`);
      const r = await onPool(poolDir, 'fsck', { repair: o.repair === true, graceSeconds: grace });
      emit(r, renderFsck(r));
      if (!r.clean) process.exitCode = EXIT_FAILURE;
    });

  program
    .command('mount')
    .description('mount the pool with FUSE (in the background unless --foreground)')
    .argument('<pool>')
    .argument('<mountpoint>')
    .option('--foreground', 'serve in this process until SIGTERM or SIGINT')
    .option('--allow-other', 'let other users access the mount (default: security.allow_other)')
    .option('--config <file>', 'configuration file applied to the pool now and re-read on SIGHUP')
    .option('--metrics-listen <host:port>', 'serve /metrics, /health and the rest here (default: monitoring.metrics_listen)')
    .addOption(new Option('--log-format <format>', 'log format (default: monitoring.log_format)').choices(['auto', 'json', 'pretty']))
    .option('--json', 'machine-readable output')
    .action(
      async (
        poolDir: string,
        mnt: string,
        o: { foreground?: boolean; allowOther?: boolean; config?: string; metricsListen?: string; logFormat?: LogFormat },
      ) => {
        const abs = path.resolve(mnt);
        if (o.config) await readConfigFile(o.config).then((f) => resolveConfig(f, { env: process.env, source: o.config }));
        if (o.metricsListen) parseListen(o.metricsListen);
        if (o.foreground) {
          await runPoolDaemon(poolDir, {
            mountpoint: abs,
            allowOther: o.allowOther,
            configFile: o.config && path.resolve(o.config),
            metricsListen: o.metricsListen,
            logFormat: o.logFormat,
          });
          return;
        }
        const owner = readLockOwner(path.resolve(poolDir));
        if (owner) throw new PoolBusyError(path.resolve(poolDir), owner);
        const logFile = path.join(path.resolve(poolDir), 'mount.log');
        const out = openSync(logFile, 'a', PRIVATE_FILE);
        const args = [
          fileURLToPath(import.meta.url),
          'mount',
          poolDir,
          abs,
          '--foreground',
          ...(o.allowOther ? ['--allow-other'] : []),
          ...(o.config ? ['--config', path.resolve(o.config)] : []),
          ...(o.metricsListen ? ['--metrics-listen', o.metricsListen] : []),
          ...(o.logFormat ? ['--log-format', o.logFormat] : []),
        ];
        const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out] });
        let exited: number | null = null;
        child.on('exit', (code) => (exited = code ?? 1));
        // A mount left by a daemon killed with -9 is still listed (every call on it fails with ENOTCONN),
        // and mount ids are reused: mounted means listed and answering. This process does not serve the
        // mount, so it may wait on it (never longer than a few seconds per try).
        const mountedNow = async (): Promise<boolean> => {
          if (!(await isMounted(abs))) return false;
          const answered = fsp.stat(abs).then(
            () => true,
            () => false,
          );
          return Promise.race([answered, new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
        };
        const ok = await waitFor(async () => exited !== null || (await mountedNow()), 30_000);
        if (!ok || exited !== null) {
          const tail = (await fsp.readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
          throw new Error(`mount of ${abs} failed${exited !== null ? ` (daemon exited with ${exited})` : ' (timed out)'}:\n${tail}`);
        }
        child.unref();
        emit(
          { mountpoint: abs, pid: child.pid, log: logFile },
          `mounted ${path.resolve(poolDir)} at ${abs} (daemon pid ${child.pid}, log ${logFile})`,
        );
      },
    );

  program
    .command('unmount')
    .alias('umount')
    .description('flush and unmount a mounted pool (POOL or its mount point)')
    .argument('<pool>')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string) => {
      const abs = path.resolve(poolDir);
      const owner = readLockOwner(abs);
      if (!owner) {
        if (await isMounted(abs)) {
          await lazyUnmount(abs);
          emit({ unmounted: abs, daemon: null }, `lazily unmounted ${abs} (no daemon was serving it)`);
          return;
        }
        throw new Error(`pool ${abs} is not mounted`);
      }
      process.kill(owner.pid, 'SIGTERM');
      const gone = await waitFor(async () => !processAlive(owner.pid), 60_000);
      if (!gone) throw new Error(`daemon ${owner.pid} did not stop within 60s`);
      emit({ unmounted: owner.mountpoint, daemon: owner.pid }, `unmounted ${owner.mountpoint ?? abs}`);
    });

  registerConfigCommands(program);
  registerOpsCommands(program);
  registerVolumeCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  restrictUmask();
  // One-shot commands log warnings and errors only; daemons take their level from the configuration.
  const envLevel = process.env.DYNAMICFS_LOG_LEVEL;
  configureLogging({ level: envLevel && (LOG_LEVELS as readonly string[]).includes(envLevel) ? (envLevel as LogLevel) : 'warn' });
  const program = buildCli();
  try {
    await withTrace('cli', () => program.parseAsync(argv));
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return EXIT_USAGE;
    }
    // Bad usage found here or by the daemon that ran the command: exit 2.
    const usage = err instanceof UsageError || (err instanceof ControlError && err.usage);
    const message = err instanceof Error ? err.message : String(err);
    if (isJsonOutput()) process.stdout.write(JSON.stringify({ ok: false, error: message }) + '\n');
    process.stderr.write(`dynamicfs: ${usage ? 'usage error' : 'error'}: ${message}\n`);
    return usage ? EXIT_USAGE : EXIT_FAILURE;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // main() returns when the command is done (for a foreground mount: after a clean unmount).
  main(process.argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`dynamicfs: error: ${String(err)}\n`);
      process.exit(EXIT_FAILURE);
    },
  );
}
