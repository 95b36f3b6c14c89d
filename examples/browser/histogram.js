// One histogram of a tensor's values, drawn as SVG (no library).

export const BINS = 40;
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 240;
const MARGIN = { left: 48, right: 12, top: 12, bottom: 28 };

/**
 * BINS equal bins over [min, max] of the values: value x goes to bin
 * min(floor((x - min) / (max - min) * BINS), BINS - 1), in double arithmetic (all bins 0 when
 * every value is the same).
 * @param {Float64Array} values
 */
export function bin(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of values) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  const counts = new Array(BINS).fill(0);
  const width = hi - lo;
  for (const x of values) counts[width > 0 ? Math.min(Math.floor(((x - lo) / width) * BINS), BINS - 1) : 0] += 1;
  return { lo, hi, counts };
}

/** @param {string} tag @param {Record<string, string | number>} attrs */
function el(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/**
 * The histogram of `values` as an <svg> element; each bar carries data-bin and data-count.
 * @param {Float64Array} values
 * @param {string} title
 */
export function histogram(values, title) {
  const { lo, hi, counts } = bin(values);
  const svg = el("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title,
                          "data-lo": lo, "data-hi": hi });
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const top = Math.max(...counts, 1);
  const barW = plotW / BINS;
  const bars = el("g", { class: "bars" });
  counts.forEach((count, i) => {
    const h = (count / top) * plotH;
    const rect = el("rect", { class: "bar", x: MARGIN.left + i * barW, y: MARGIN.top + plotH - h,
                              width: Math.max(barW - 1, 1), height: h, "data-bin": i, "data-count": count });
    const tip = el("title", {});
    tip.textContent = `${count} values`;
    rect.append(tip);
    bars.append(rect);
  });
  svg.append(bars);
  const axis = el("g", { class: "axis" });
  axis.append(el("line", { x1: MARGIN.left, y1: MARGIN.top + plotH, x2: WIDTH - MARGIN.right, y2: MARGIN.top + plotH }));
  const labels = [[MARGIN.left, "start", lo], [WIDTH - MARGIN.right, "end", hi]];
  for (const [x, anchor, value] of labels) {
    const text = el("text", { x, y: HEIGHT - 8, "text-anchor": anchor });
    text.textContent = Number(value).toPrecision(4);
    axis.append(text);
  }
  const peak = el("text", { x: MARGIN.left - 6, y: MARGIN.top + 10, "text-anchor": "end" });
  peak.textContent = String(top);
  axis.append(peak);
  svg.append(axis);
  return svg;
}
