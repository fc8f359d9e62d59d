import type { Metric, Registry } from 'prom-client';

/**
 * Counters and histograms for the FUSE hot path. prom-client hashes the label object on every
 * inc() and observe(); three of those per FUSE request cost the daemon 4-5 % of a cold 1 GiB read
 * (measured against a build without them). Here a label set is resolved once to a series, and
 * recording is a few additions on plain numbers; prom-client's registry sees ordinary counters and
 * histograms when it is scraped.
 */
type Labels = Record<string, string>;

interface Exported {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

abstract class HotMetric<S> {
  private readonly series = new Map<string, { labels: Labels; s: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  abstract readonly type: 'counter' | 'histogram';
  protected abstract fresh(): S;
  protected abstract export(labels: Labels, s: S): Exported[];
  protected abstract zero(s: S): void;

  /** The series of one label set; keep it and record on it. */
  with(labels: Labels): S {
    const key = this.labelNames.map((n) => labels[n] ?? '').join('\u0000');
    let entry = this.series.get(key);
    if (!entry) {
      entry = { labels: { ...labels }, s: this.fresh() };
      this.series.set(key, entry);
    }
    return entry.s;
  }

  /** What prom-client's registry reads when it renders the exposition or JSON. */
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Exported[] }> {
    const values = [...this.series.values()].flatMap((e) => this.export(e.labels, e.s));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: 'sum', values });
  }

  /** Zeroes every series in place: callers keep the series they resolved, so none may be dropped. */
  reset(): void {
    for (const e of this.series.values()) this.zero(e.s);
  }
}

export class HotCount {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

export class HotCounter extends HotMetric<HotCount> {
  readonly type = 'counter';
  protected fresh(): HotCount {
    return new HotCount();
  }
  protected zero(s: HotCount): void {
    s.value = 0;
  }
  protected export(labels: Labels, s: HotCount): Exported[] {
    return [{ value: s.value, labels, metricName: this.name }];
  }
}

export class HotSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

export class HotHistogram extends HotMetric<HotSeries> {
  readonly type = 'histogram';
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
  }
  protected fresh(): HotSeries {
    return new HotSeries(this.bounds);
  }
  protected zero(s: HotSeries): void {
    s.counts.fill(0);
    s.sum = 0;
    s.count = 0;
  }
  protected export(labels: Labels, s: HotSeries): Exported[] {
    const out: Exported[] = [];
    let cumulative = 0;
    this.bounds.forEach((le, i) => {
      cumulative += s.counts[i];
      out.push({ value: cumulative, labels: { le, ...labels }, metricName: `${this.name}_bucket` });
    });
    out.push({ value: s.count, labels: { le: '+Inf', ...labels }, metricName: `${this.name}_bucket` });
    out.push({ value: s.sum, labels, metricName: `${this.name}_sum` });
    out.push({ value: s.count, labels, metricName: `${this.name}_count` });
    return out;
  }
}
