#!/usr/bin/env python3
"""Summarises the results of benches/baseline.sh: a markdown table of every target with
both sides of each comparison, and the plots in docs/perf/.

    report.py --one FILE.json               one line for one `congvan bench --json` report
    report.py --median-rate DIR SIZE        median congvan docs/s of the headline runs
    report.py --table DIR [--plots OUTDIR]  the table (stdout) and the PNG plots
"""

import glob
import json
import os
import re
import statistics
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def kind(report, name=None):
    kinds = report.get("kinds", [])
    for k in kinds:
        if name is None or k["kind"] == name:
            return k
    return None


def one_line(path):
    r = load(path)
    for k in r.get("kinds", []):
        lat = k["latency_ms"]
        errors = f", errors {k['error_codes']}" if k["errors"] else ""
        print(
            f"  {os.path.basename(path)}: {k['kind']} {k['ops_per_s']:.1f}/s "
            f"{k['mb_per_s']:.1f} MB/s p50 {lat['p50']:.2f} ms p99 {lat['p99']:.2f} ms "
            f"max {lat['max']:.2f} ms{errors}"
        )
    if "ceiling" in r:
        print(f"  signature ceiling: {r['ceiling']['docs_per_s']:.0f} docs/s")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rounds(d, pattern):
    """Reports matching a glob pattern, in round order."""
    return [load(p) for p in sorted(glob.glob(os.path.join(d, pattern)))
            if not p.endswith((".cpu.json", ".rss.json", ".du.json"))]


def cpu_per_op(d, name):
    try:
        cpu = load(os.path.join(d, name + ".cpu.json"))["server_cpu_s"]
        r = load(os.path.join(d, name + ".json"))
    except OSError:
        return None
    k = kind(r)
    if not k or not k["ok"]:
        return None
    # The server's CPU time covers the warm-up too; scale by the measured share.
    total_ops = k["ok"] / max(r["seconds"], 1e-9) * (r["seconds"] + 2.0)
    return cpu / total_ops * 1000.0


def verdict(ok):
    return "met" if ok else "**missed**"


def side_values(d, side):
    """The congvan figures of one build: `side` is "congvan" (this tree) or "before"."""
    v = {}
    pre = "before-" if side == "before" else ""
    v["100k"] = median([kind(r)["ops_per_s"] for r in rounds(d, f"pair-100KiB-*-{side}.json")])
    v["10k"] = median([kind(r)["ops_per_s"] for r in rounds(d, f"pair-10KiB-*-{side}.json")])
    for size, key in (("100KiB", "cpu100k"), ("10KiB", "cpu10k")):
        v[key] = median([cpu_per_op(d, os.path.basename(p)[:-5])
                         for p in sorted(glob.glob(os.path.join(d, f"pair-{size}-*-{side}.json")))])
    v["upload"] = median([kind(r)["mb_per_s"] for r in rounds(d, f"upload-*-{side}.json")])
    growth = [(load(p)["hwm_kib"] - load(p)["rss_before_kib"]) / 1024.0
              for p in sorted(glob.glob(os.path.join(d, f"upload-*-{side}.rss.json")))]
    v["rss"] = max(growth) if growth else None
    seal = rounds(d, f"seal-*-{side}.json")
    v["seal"] = median([r["seal_mb_s"] for r in seal])
    v["open"] = median([r["open_mb_s"] for r in seal])
    sizes = sorted({int(m.group(1)) for p in glob.glob(os.path.join(d, f"{pre}store-*-inbox.json"))
                    if (m := re.match(rf"{pre}store-(\d+)-inbox\.json$", os.path.basename(p)))})
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        v["store_lo"], v["store_hi"] = lo, hi
        for what in ("inbox", "submit"):
            a = kind(load(os.path.join(d, f"{pre}store-{lo}-{what}.json")))["latency_ms"]["p99"]
            b = kind(load(os.path.join(d, f"{pre}store-{hi}-{what}.json")))["latency_ms"]["p99"]
            v[f"{what}_lo"], v[f"{what}_hi"] = a, b
        try:
            du = load(os.path.join(d, f"{pre}store-{hi}.du.json"))
            if du.get("documents"):
                v["disk_per_doc_kb"] = du["data_kib"] * 1024 / du["documents"] / 1000.0
        except OSError:
            pass
    return v


def fmt(value, pattern):
    return pattern.format(value) if value is not None else "–"


def ledger_rates(d):
    """(description, events/s) from the ledger benchmark's output, if section 7 ran."""
    try:
        text = open(os.path.join(d, "ledger.txt"), encoding="utf-8").read()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        m = re.search(r"^(.*?)=\s*([\d.]+) events/s(.*)$", line)
        if m:
            out.append((m.group(1).strip() + m.group(3), float(m.group(2))))
    try:
        costs = open(os.path.join(d, "sled_costs.txt"), encoding="utf-8").read()
    except OSError:
        costs = ""
    for line in costs.splitlines():
        m = re.search(r"^(.*?)\s+([\d.]+) /s\s+([\d.]+) µs each", line)
        if m:
            out.append((f"sled_costs: {m.group(1).strip()} ({m.group(3)} µs each)", float(m.group(2))))
    return out


def table(d):
    out = []
    machine = open(os.path.join(d, "machine.txt"), encoding="utf-8").read().strip()
    out.append("```\n" + machine + "\n```\n")
    sides = ["congvan"]
    if glob.glob(os.path.join(d, "*-before.json")) or glob.glob(os.path.join(d, "before-*.json")):
        sides.insert(0, "before")
    vals = {s: side_values(d, s) for s in sides}

    ng100 = median([kind(r)["ops_per_s"] for r in rounds(d, "pair-100KiB-*-nginx.json")])
    ceil = median([r["ceiling"]["docs_per_s"] for r in rounds(d, "pair-10KiB-*-congvan.json")
                   if "ceiling" in r])
    # CPU of the two signature verifications of one document: the ceiling runs one
    # verifying thread per core.
    sig_ms = (os.cpu_count() or 1) / ceil * 1000.0 if ceil else None
    ng_up = median([r["bytes"] / r["seconds"] / 1e6 for r in rounds(d, "upload-*-nginx.json")])

    def gpg(variant, what):
        g = rounds(d, f"seal-*-gpg-{variant}.json")
        return median([r["bytes"] / r[what] / 1e6 for r in g]) if g else None

    # (measurement, value of a side, baseline text, ratio of a side, target text, target met?)
    rows = [
        ("server CPU per 10 KiB document ÷ its two signature verifications",
         lambda v: fmt(v["cpu10k"], "{:.2f} ms"),
         fmt(sig_ms, "signatures {:.3f} ms"),
         lambda v: v["cpu10k"] / sig_ms if v["cpu10k"] and sig_ms else None, "≤ 2x", lambda r: r <= 2.0),
        ("100 KiB, 2 signatures, durable, c=64", lambda v: fmt(v["100k"], "{:.0f} docs/s"),
         fmt(ng100, "nginx PUT {:.0f} req/s"),
         lambda v: v["100k"] / ng100 if v["100k"] and ng100 else None, "≥ 0.5x", lambda r: r >= 0.5),
        ("10 KiB, c=64, against the signature ceiling", lambda v: fmt(v["10k"], "{:.0f} docs/s"),
         fmt(ceil, "ceiling {:.0f} docs/s"),
         lambda v: v["10k"] / ceil if v["10k"] and ceil else None, "≥ 0.5x", lambda r: r >= 0.5),
        ("1 GiB upload", lambda v: fmt(v["upload"], "{:.0f} MB/s"), fmt(ng_up, "curl→nginx {:.0f} MB/s"),
         lambda v: v["upload"] / ng_up if v["upload"] and ng_up else None, "≥ 0.5x", lambda r: r >= 0.5),
        ("server peak RSS growth during the 1 GiB upload", lambda v: fmt(v["rss"], "{:.1f} MiB"), "",
         lambda v: None, "< 64 MiB", None),
    ]
    for variant, flags, target in (("sign-encrypt-z0", "-z 0 --sign --encrypt", 1.5),
                                   ("encrypt-z0", "-z 0 --encrypt", None),
                                   ("sign-encrypt", "--sign --encrypt", 1.0)):
        gs, go = gpg(variant, "seal_s"), gpg(variant, "open_s")
        if gs is None:
            continue
        tt = f"≥ {target}x" if target else ""
        rows.append((f"seal 256 MiB (sign + encrypt) vs gpg {flags}", lambda v: fmt(v["seal"], "{:.0f} MB/s"),
                     f"gpg {gs:.0f} MB/s", lambda v, gs=gs: v["seal"] / gs if v["seal"] else None, tt,
                     (lambda r, t=target: r >= t) if target else None))
        rows.append((f"open 256 MiB (decrypt + verify) vs gpg --decrypt (of {flags})",
                     lambda v: fmt(v["open"], "{:.0f} MB/s"), f"gpg {go:.0f} MB/s",
                     lambda v, go=go: v["open"] / go if v["open"] else None, tt,
                     (lambda r, t=target: r >= t) if target else None))
    for cls in ("thuong", "mat"):
        try:
            one = kind(load(os.path.join(d, f"recip-{cls}-1.json")))["latency_ms"]["mean"]
            many = kind(load(os.path.join(d, f"recip-{cls}-1000.json")))["latency_ms"]["mean"]
        except (OSError, TypeError):
            continue
        rows.append((f"1,000 recipients vs 1 ({cls}), mean submit latency",
                     lambda v, s=f"{many:.1f} ms": s if v is vals["congvan"] else "–",
                     f"{one:.1f} ms", lambda v, r=many / one: r if v is vals["congvan"] else None,
                     "< 10x", lambda r: r < 10))
    for what in ("inbox", "submit"):
        rows.append((f"{what} p99 at the largest store vs 1,000 documents (sizes in the note below)",
                     lambda v, w=what: fmt(v.get(f"{w}_hi"), "{:.2f} ms"),
                     "p99 at 1,000: " + " / ".join(fmt(vals[s].get(f"{what}_lo"), "{:.2f} ms") for s in sides),
                     lambda v, w=what: v[f"{w}_hi"] / v[f"{w}_lo"] if v.get(f"{w}_hi") else None,
                     "≤ 1.5x", lambda r: r <= 1.5))
    rows.append(("disk per 1 KiB document (data directory ÷ documents, largest store)",
                 lambda v: fmt(v.get("disk_per_doc_kb"), "{:.1f} KB"), "", lambda v: v.get("disk_per_doc_kb"),
                 "≤ 4 KB", lambda r: r <= 4.0))

    def ratio_text(r):
        return "" if r is None else f"{r:.2f}x"

    if len(sides) == 2:
        out.append("| measurement | before | after | baseline | before ratio | after ratio | target | after |")
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    else:
        out.append("| measurement | congvan | baseline | ratio | target | |")
        out.append("| --- | --- | --- | --- | --- | --- |")
    for name, value, base, ratio, target, ok in rows:
        cells = [name] + [value(vals[s]) for s in sides] + [base]
        rs = [ratio(vals[s]) for s in sides]
        last = rs[-1]
        if name.startswith("disk per"):
            cells += ["" for _ in sides]
        elif name.startswith("server peak RSS"):
            cells += ["" for _ in sides]
            last = vals["congvan"]["rss"]
            ok = (lambda r: r < 64)
        else:
            cells += [ratio_text(r) for r in rs]
        cells.append(target)
        cells.append(verdict(ok(last)) if ok and last is not None else "")
        out.append("| " + " | ".join(cells) + " |")

    v = vals["congvan"]
    if v.get("store_hi"):
        out.append(f"\nStore growth: from {v['store_lo']:,} to {v['store_hi']:,} stored documents "
                   "(1 KiB each, plus the 10 KiB ones the submit runs added).")
    rates = ledger_rates(d)
    if rates:
        out.append("\nThe delivery log (`cargo bench --bench ledger`, same run):\n")
        out.append("| what | events/s |")
        out.append("| --- | --- |")
        for what, rate in rates:
            out.append(f"| {what} | {rate:,.0f} |")
    return "\n".join(out)


def plots(d, outdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(outdir, exist_ok=True)

    def series(pattern, xre, metric):
        pts = []
        for p in glob.glob(os.path.join(d, pattern)):
            if p.endswith((".cpu.json", ".rss.json", ".du.json")):
                continue
            m = re.search(xre, os.path.basename(p))
            k = kind(load(p))
            if m and k:
                pts.append((float(m.group(1)), metric(k, load(p))))
        return sorted(pts)

    def draw(name, title, xlabel, ylabel, lines, xscale=None, hline=None):
        """One PNG: `lines` is [(label, [(x, y), ...])]; nothing is drawn without data."""
        lines = [(label, pts) for label, pts in lines if pts]
        if not lines:
            return
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, pts in lines:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=label)
        if hline is not None:
            ax.axhline(hline[0], color="grey", linestyle="--", linewidth=1, label=hline[1])
        if xscale:
            ax.set_xscale(xscale[0], **xscale[1])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, name), dpi=110)
        plt.close(fig)

    draw("throughput_vs_concurrency.png", "Throughput against concurrency (2 signatures, durable)",
         "concurrent clients", "documents accepted per second",
         [(f"{size} documents",
           series(f"conc-{size}-*.json", rf"conc-{size}-(\d+)\.json", lambda k, r: k["ops_per_s"]))
          for size in ("10KiB", "100KiB")],
         xscale=("log", {"base": 2}))

    load_pts = [v for _, v in series("load-*.json", r"load-(\d+)\.json",
                                     lambda k, r: (k["ops_per_s"], k["latency_ms"]["p50"],
                                                   k["latency_ms"]["p99"]))]
    draw("latency_vs_load.png", "Latency against load",
         "offered load, 100 KiB documents per second (open loop)", "latency, ms",
         [("p50", [(v[0], v[1]) for v in load_pts]), ("p99", [(v[0], v[2]) for v in load_pts])],
         hline=(20, "20 ms"))

    draw("cost_vs_store_size.png", "Cost against store size", "documents stored",
         "latency, ms (16 clients)",
         [(f"{what} p99", series(f"store-*-{what}.json", rf"store-(\d+)-{what}\.json",
                                 lambda k, r: k["latency_ms"]["p99"]))
          for what in ("inbox", "submit")],
         xscale=("log", {}))

    draw("cost_vs_recipients.png", "Cost against recipients", "recipients per document",
         "mean submit latency, ms (100 KiB)",
         [(label, series(f"recip-{cls}-*.json", rf"recip-{cls}-(\d+)\.json",
                         lambda k, r: k["latency_ms"]["mean"]))
          for cls, label in (("thuong", "unclassified"), ("mat", "classified (Mật)"))],
         xscale=("log", {}))


def main(argv):
    if len(argv) >= 2 and argv[0] == "--one":
        one_line(argv[1])
    elif len(argv) >= 3 and argv[0] == "--median-rate":
        rates = [kind(r)["ops_per_s"] for r in rounds(argv[1], f"pair-{argv[2]}-*-congvan.json")]
        print(f"{median(rates):.1f}")
    elif len(argv) >= 2 and argv[0] == "--table":
        print(table(argv[1]))
        if len(argv) >= 4 and argv[2] == "--plots":
            plots(argv[1], argv[3])
            print(f"\nplots written to {argv[3]}")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
