// A grouped bar chart as a hand-written SVG: one group per workload (or worker count), one bar per
// system, a dashed reference line (1.0 = node:cluster round-robin). No dependency.

export interface ChartGroup {
  label: string;
  bars: Array<{ series: string; value: number | undefined }>;
}

export interface Chart {
  title: string;
  yLabel: string;
  groups: ChartGroup[];
  /** Draws a dashed horizontal line at this value. */
  reference?: number;
}

const PALETTE = ['#8c8c8c', '#4e79a7', '#76b7b2', '#f28e2b', '#e15759', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f'];

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The chart as an SVG document. */
export function barChart({ title, yLabel, groups, reference }: Chart): string {
  const series = [...new Set(groups.flatMap((group) => group.bars.map((bar) => bar.series)))];
  const values = groups.flatMap((group) => group.bars.map((bar) => bar.value ?? 0));
  const top = niceCeiling(Math.max(reference ?? 0, ...values) * 1.1);
  const left = 60;
  const plotTop = 40;
  const plotHeight = 300;
  const groupGap = 30;
  // Wide enough for bars of at least 16 px, the title and three legend columns.
  const plotWidth = Math.max(groups.length * (series.length * 16 + groupGap), 3 * 240, title.length * 7.5);
  const groupWidth = plotWidth / Math.max(1, groups.length);
  const barWidth = Math.min(32, (groupWidth - groupGap) / Math.max(1, series.length));
  const legendTop = plotTop + plotHeight + 50;
  const width = left + plotWidth + 20;
  const height = legendTop + Math.ceil(series.length / 3) * 18 + 10;
  const y = (value: number) => plotTop + plotHeight - (value / top) * plotHeight;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${escape(title)}</text>`,
    `<text transform="translate(14 ${plotTop + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escape(yLabel)}</text>`,
  ];
  for (let step = 0; step <= 4; step++) {
    const value = (top / 4) * step;
    out.push(
      `<line x1="${left}" x2="${left + plotWidth}" y1="${y(value)}" y2="${y(value)}" stroke="#e0e0e0"/>`,
      `<text x="${left - 6}" y="${y(value) + 4}" text-anchor="end">${format(value)}</text>`,
    );
  }
  groups.forEach((group, g) => {
    const x0 = left + g * groupWidth + (groupWidth - series.length * barWidth) / 2;
    for (const bar of group.bars) {
      const x = x0 + series.indexOf(bar.series) * barWidth;
      const color = PALETTE[series.indexOf(bar.series) % PALETTE.length];
      if (bar.value === undefined) {
        out.push(`<text x="${x + barWidth / 2}" y="${y(0) - 4}" text-anchor="middle" fill="#999">n/a</text>`);
        continue;
      }
      out.push(
        `<rect x="${x}" y="${y(bar.value)}" width="${barWidth - 3}" height="${y(0) - y(bar.value)}" fill="${color}"><title>${escape(bar.series)}: ${format(bar.value)}</title></rect>`,
        `<text x="${x + (barWidth - 3) / 2}" y="${y(bar.value) - 3}" text-anchor="middle" font-size="9">${format(bar.value)}</text>`,
      );
    }
    out.push(`<text x="${x0 + (series.length * barWidth) / 2}" y="${plotTop + plotHeight + 18}" text-anchor="middle">${escape(group.label)}</text>`);
  });
  out.push(`<line x1="${left}" x2="${left}" y1="${plotTop}" y2="${plotTop + plotHeight}" stroke="black"/>`);
  out.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${y(0)}" y2="${y(0)}" stroke="black"/>`);
  if (reference !== undefined) {
    out.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${y(reference)}" y2="${y(reference)}" stroke="black" stroke-dasharray="5 4"/>`);
  }
  series.forEach((name, s) => {
    const x = left + (s % 3) * 240;
    const yy = legendTop + Math.floor(s / 3) * 18;
    out.push(
      `<rect x="${x}" y="${yy - 10}" width="12" height="12" fill="${PALETTE[s % PALETTE.length]}"/>`,
      `<text x="${x + 18}" y="${yy}">${escape(name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function format(value: number): string {
  if (value >= 1000) return String(Math.round(value));
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}
