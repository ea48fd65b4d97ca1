// The one way vaultbot draws a chart, with the vendored uPlot (vendor/uPlot.iife.min.js): the depositor page
// loads this file, the backtest report inlines it. Times are on a UTC axis; the legend shows the point under
// the cursor, else the last one, in the texts the caller wrote: only the axes' tick numbers are written here.
"use strict";

const vaultbotCharts = (() => {
  const PALETTE = ["#2f5bd3", "#d9822b", "#1e7a3c", "#b3261e", "#7b4fc9", "#0f8b8d", "#8c6d1f", "#c2185b",
    "#546e7a", "#6d4c41"];
  const HEIGHT = 240;
  const MIN_WIDTH = 280;
  const DAY_S = 86_400;
  const utc = (seconds) => uPlot.tzDate(new Date(seconds * 1e3), "Etc/UTC");
  const FORMATS = { day: uPlot.fmtDate("{YYYY}-{MM}-{DD}"), minute: uPlot.fmtDate("{YYYY}-{MM}-{DD} {HH}:{mm}") };
  const drawn = new Set();

  // A tick on the time axis: the day, and the time of day when the ticks are less than a day apart.
  function timeTicks(u, ticks, axis, space, increment) {
    const format = increment >= DAY_S ? FORMATS.day : FORMATS.minute;
    return ticks.map((tick) => format(utc(tick)));
  }

  // A tick on a value axis: grouped as the server writes amounts, with the decimals the ticks' spacing needs
  // (uPlot's default stops at 3: a share price's ticks would all read "1").
  function valueTicks(u, ticks, axis, space, increment) {
    let places = Math.max(0, -Math.floor(Math.log10(increment)));
    while (places < 12 && Math.abs(Math.round(increment * 10 ** places) - increment * 10 ** places) > 1e-9) places++;
    const format = new Intl.NumberFormat("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
    return ticks.map((tick) => format.format(tick));
  }

  function legendValue(series, time) {
    return (u, value, seriesIndex, index) => {
      if (index == null || value == null) return "–";
      if (series.texts) return series.texts[index] ?? "–";
      return time ? `${FORMATS[time](utc(value))} UTC` : String(value);
    };
  }

  // spec: {x, xTexts, xLabel, yLabel, time: "minute" | "day" | null (x is not a time: then xTexts are its
  // legend's), stacked, series: [{label, values, texts, colour (a CSS colour, or an index of the palette: one
  // series' colour on several charts; by default its place), points (a scatter), dash, width}]}. Stacked are
  // drawn as areas from 0, the first on top.
  function draw(container, spec) {
    const old = container.chart;
    if (old) { drawn.delete(old); old.destroy(); }
    const data = [spec.x, ...stack(spec)];
    const options = {
      width: widthOf(container), height: HEIGHT,
      padding: [12, 40, 0, 0],  // room on the right for the last tick's label
      scales: { x: { time: Boolean(spec.time) }, y: { range: spec.stacked ? fromZero : valueRange } },
      tzDate: utc,
      cursor: { drag: { x: true, y: false } },  // drag to zoom in, double-click to zoom out
      axes: [
        spec.time ? { label: spec.xLabel, values: timeTicks, space: 100 } : { label: spec.xLabel },
        { label: spec.yLabel, values: valueTicks, size: 80 },
      ],
      series: [
        { label: spec.xLabel, value: legendValue({ texts: spec.xTexts }, spec.time) },
        ...spec.series.map((series, i) => seriesOptions(series, i, spec)),
      ],
      hooks: { setLegend: [(u) => { if (u.legend.idx == null) showLastPoint(u); }] },
    };
    const chart = new uPlot(options, data, container);
    container.chart = chart;  // the drawn instance: for the console and the browser tests
    drawn.add(chart);
    showLastPoint(chart);
    return chart;
  }

  function seriesOptions(series, i, spec) {
    const colour = typeof series.colour === "string" ? series.colour : PALETTE[(series.colour ?? i) % PALETTE.length];
    const options = { label: series.label, stroke: colour, width: series.width ?? 1.5,
      value: legendValue(series, null), spanGaps: false };
    if (series.dash) options.dash = [6, 4];
    if (spec.stacked) options.fill = colour;
    if (series.points) {
      options.paths = () => null;
      options.points = { show: true, size: 5, fill: colour };
    }
    return options;
  }

  // Stacked areas: each series is drawn as the sum of itself and those below it (listed after it), so the
  // first one, drawn first, is overpainted by the rest except for its own band.
  function stack(spec) {
    const values = spec.series.map((series) => series.values);
    if (!spec.stacked) return values;
    const sums = values.map((row) => row.slice());
    for (let i = sums.length - 2; i >= 0; i--) {
      sums[i] = sums[i].map((value, j) => (value ?? 0) + (sums[i + 1][j] ?? 0));
    }
    return sums;
  }

  // the legend away from the cursor: the latest figures
  function showLastPoint(chart) {
    if (chart.data[0].length) chart.setLegend({ idx: chart.data[0].length - 1 }, false);
  }

  // The data's range padded by a tenth, without stretching to 0; a flat line gets a narrow band around it
  // (uPlot's default would put a share price of 1.0001 on a 0..2 scale).
  function valueRange(u, min, max) {
    if (min == null || max == null) return [0, 1];
    if (max - min <= Math.abs(max) * 1e-9) {
      const pad = Math.abs(max) * 1e-4 || 1;
      return [min - pad, max + pad];
    }
    return uPlot.rangeNum(min, max, 0.1, true);
  }

  function fromZero(u, min, max) {
    return [0, valueRange(u, 0, max)[1]];
  }

  function widthOf(container) {
    return Math.max(MIN_WIDTH, Math.floor(container.clientWidth));
  }

  window.addEventListener("resize", () => {
    for (const chart of drawn) chart.setSize({ width: widthOf(chart.root.parentElement), height: HEIGHT });
  });

  return { draw };
})();
