#!/usr/bin/env python3
"""Summarizes scripts/bench.sh's raw.csv: medians over rounds per scenario and proxy.

Writes summary.csv, summary.md (markdown tables, also what bench.sh prints) and chart.dat
(the data for chart.gp: one block per scenario, rows "proxy cpu_us_per_req color").
"""
import argparse
import csv
import statistics
import sys
from pathlib import Path

COLORS = {"ringway": 1, "nginx": 2, "haproxy": 3, "ringway-base": 4, "floor": 5}


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def fmt_ms(us):
    if us is None:
        return "-"
    ms = us / 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


def fmt_mib(kib):
    return "-" if kib is None else f"{kib / 1024:.0f} MiB"


def fmt(v, spec, suffix=""):
    return "-" if v is None else format(v, spec) + suffix


def per_round_ratios(rows, scen, other, key):
    """ringway's value of `key` over `other`'s, one ratio per round in which both ran."""
    ratios = []
    for rnd in sorted({r["round"] for r in rows if r["scenario"] == scen}, key=int):
        v = {r["proxy"]: num(r[key]) for r in rows
             if r["scenario"] == scen and r["round"] == rnd}
        if v.get("ringway") and v.get(other):
            ratios.append(v["ringway"] / v[other])
    return ratios


def fmt_ratios(ratios):
    """"median (min–max)" of per-round ratios, "-" when there are none."""
    if not ratios:
        return "-"
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--meta")
    ap.add_argument("--proxies", default="ringway,nginx,haproxy")
    ap.add_argument("--scenarios", default="get1k,get64k,handshake,post16k")
    a = ap.parse_args()
    out = Path(a.out)
    proxies = a.proxies.split(",")
    scenarios = a.scenarios.split(",")

    with open(a.raw, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit("report: raw.csv has no rows")

    summary = {}
    for scen in scenarios:
        for p in proxies:
            rs = [r for r in rows if r["scenario"] == scen and r["proxy"] == p]
            if not rs:
                continue
            notes = sorted({r["note"] for r in rs if r["note"]})
            summary[(scen, p)] = {
                "rounds": len(rs),
                "rps": med(num(r["rps"]) for r in rs),
                "p50": med(num(r["lat_p50_us"]) for r in rs),
                "p99": med(num(r["lat_p99_us"]) for r in rs),
                "errors": sum(int(num(r["errors"]) or 0) for r in rs),
                "requests": sum(int(num(r["requests"]) or 0) for r in rs),
                "cpu": med(num(r["cpu_us_per_req"]) for r in rs),
                "pct": med(num(r["proxy_cpu_pct"]) for r in rs),
                "other": med(num(r["core_other_pct"]) for r in rs),
                "apr": med(num(r["accepts_per_req"]) for r in rs),
                "peak_rss": max((num(r.get("peak_rss_kb")) or 0 for r in rs), default=0) or None,
                "notes": "; ".join(notes),
            }
    for (scen, p), s in summary.items():
        rw = summary.get((scen, "ringway"), {}).get("cpu")
        s["ratio"] = rw / s["cpu"] if rw and s["cpu"] else None

    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scenario", "proxy", "rounds", "requests_total", "rps_median",
                    "lat_p50_us_median", "lat_p99_us_median", "errors_total",
                    "cpu_us_per_req_median", "proxy_cpu_pct_median", "core_other_pct_median",
                    "accepts_per_req_median", "ringway_cpu_per_req_ratio", "peak_rss_kb_max",
                    "notes"])
        for (scen, p), s in summary.items():
            w.writerow([scen, p, s["rounds"], s["requests"], fmt(s["rps"], ".1f"),
                        fmt(s["p50"], ".0f"), fmt(s["p99"], ".0f"), s["errors"],
                        fmt(s["cpu"], ".2f"), fmt(s["pct"], ".1f"), fmt(s["other"], ".1f"),
                        fmt(s["apr"], ".3f"), fmt(s["ratio"], ".3f"), fmt(s["peak_rss"], ".0f"),
                        s["notes"]])

    rounds = max(s["rounds"] for s in summary.values())
    md = ["# ringway vs nginx vs HAProxy: TLS-terminating proxy, one core each", ""]
    if a.meta and Path(a.meta).exists():
        for line in Path(a.meta).read_text().splitlines():
            if ":" in line and not line.split(":", 1)[0] in scenarios:
                md.append(f"- {line}")
        md.append("")
    md += [
        f"Medians over {rounds} round(s); errors are summed over the rounds. "
        "CPU µs/req: the proxy's utime+stime (all its processes and threads) over requests "
        "served. Proxy CPU: % of one core during the run; well below 100% means the client "
        "(wrk, sharing its core with the backend) was the limit, not the proxy, so req/s and "
        "latency then compare the client more than the proxies. Other load on its core: the "
        "busy time of the proxy's core not spent in the proxy (softirq, other processes on a "
        "shared machine); high values mean a noisy measurement. New conns/req: TCP connections "
        "accepted on the machine per request (about 1 in handshake, about 0 with keep-alive). "
        "Peak RSS: the most resident memory the proxy (all its processes) held since it was "
        "started for the scenario, warm-up and every round included (VmHWM). A scenario "
        "NAME@N runs N connections.",
        "",
        "| scenario | proxy | req/s | p50 | p99 | errors | CPU µs/req | proxy CPU | "
        "other load on its core | new conns/req | peak RSS |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for (scen, p), s in summary.items():
        md.append(f"| {scen} | {p} | {fmt(s['rps'], ',.0f')} | {fmt_ms(s['p50'])} | "
                  f"{fmt_ms(s['p99'])} | {s['errors']} | {fmt(s['cpu'], '.1f')} | "
                  f"{fmt(s['pct'], '.0f', '%')} | {fmt(s['other'], '.0f', '%')} | "
                  f"{fmt(s['apr'], '.2f')} | {fmt_mib(s['peak_rss'])} |")
    if "floor" in proxies:
        measured = [p for p in proxies if p != "floor"]
        md += ["", "Above the L4 relay floor (\"floor\": HAProxy in TCP mode moving the same "
               "bytes, no TLS, no HTTP): each proxy's CPU µs per request minus the floor's, "
               "median over rounds of the per-round difference (range in brackets; below 0: "
               "the proxy used less CPU than the relay alone), and the ratio of those costs "
               "to ringway's where both are above 0:", ""]
        ratio_to = [p for p in measured if p != "ringway"] if "ringway" in measured else []
        header = (["scenario", "floor µs/req"] + [f"{p} above" for p in measured]
                  + [f"ringway ÷ {p} above" for p in ratio_to])
        md += ["| " + " | ".join(header) + " |", "|---|" + "--:|" * (len(header) - 1)]
        for scen in scenarios:
            if (scen, "floor") not in summary:
                continue
            above = {}
            for p in measured:
                diffs = []
                for rnd in sorted({r["round"] for r in rows if r["scenario"] == scen}):
                    cpu = {r["proxy"]: num(r["cpu_us_per_req"]) for r in rows
                           if r["scenario"] == scen and r["round"] == rnd}
                    if cpu.get(p) is not None and cpu.get("floor") is not None:
                        diffs.append(cpu[p] - cpu["floor"])
                above[p] = (med(diffs), min(diffs, default=None), max(diffs, default=None))
            cells = [f"{fmt(above[p][0], '.1f')} ({fmt(above[p][1], '.1f')}–"
                     f"{fmt(above[p][2], '.1f')})" for p in measured]
            rw = above.get("ringway", (None,))[0]
            # A ratio of costs above the floor means something only when both are positive.
            ratios = [fmt(rw / above[p][0], ".2f") if rw and rw > 0 and above[p][0]
                      and above[p][0] > 0 else "–" for p in ratio_to]
            row = [scen, fmt(summary[(scen, "floor")]["cpu"], ".1f")] + cells + ratios
            md.append("| " + " | ".join(row) + " |")
    others = [p for p in proxies if p not in ("ringway", "floor")]
    if "ringway" in proxies and others:
        md += ["", "ringway relative to the others, round by round (each round runs the proxies "
               "one after the other, so a round's ratio compares runs made seconds apart): "
               "the median of the per-round ratios, their range in brackets. CPU per request "
               "below 1.00: ringway uses less CPU per request; req/s above 1.00: ringway served "
               "more requests per second.", "",
               "| scenario | " + " | ".join(f"CPU/req ringway ÷ {p} | req/s ringway ÷ {p}"
                                          for p in others) + " |",
               "|---|" + "--:|" * (2 * len(others))]
        for scen in scenarios:
            if (scen, "ringway") not in summary:
                continue
            cells = []
            for p in others:
                for key in ("cpu_us_per_req", "rps"):
                    cells.append(fmt_ratios(per_round_ratios(rows, scen, p, key)))
            md.append(f"| {scen} | " + " | ".join(cells) + " |")
    notes = [(k, s["notes"]) for k, s in summary.items() if s["notes"]]
    if notes:
        md += ["", "Notes:"] + [f"- {scen}/{p}: {n}" for (scen, p), n in notes]
    (out / "summary.md").write_text("\n".join(md) + "\n")

    with open(out / "chart.dat", "w") as f:
        for scen in scenarios:
            f.write(f"# {scen}\n")
            for p in proxies:
                s = summary.get((scen, p))
                cpu = s["cpu"] if s and s["cpu"] is not None else 0
                f.write(f"{p} {cpu:.2f} {COLORS.get(p, 4)}\n")
            f.write("\n\n")


if __name__ == "__main__":
    main()
