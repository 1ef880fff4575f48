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


def table(d):
    rows = []
    out = []
    machine = open(os.path.join(d, "machine.txt"), encoding="utf-8").read().strip()
    out.append("```\n" + machine + "\n```\n")

    # 1. 100 KiB against nginx.
    cv = median([kind(r)["ops_per_s"] for r in rounds(d, "pair-100KiB-*-congvan.json")])
    ng = median([kind(r)["ops_per_s"] for r in rounds(d, "pair-100KiB-*-nginx.json")])
    if cv and ng:
        ratio = cv / ng
        rows.append(("100 KiB, 2 signatures, durable, c=64", f"{cv:.0f} docs/s",
                     f"nginx PUT {ng:.0f} req/s", f"{ratio:.2f}x", "≥ 0.5x", verdict(ratio >= 0.5)))
    half = None
    for p in glob.glob(os.path.join(d, "load-50.json")):
        half = load(p)
    if half:
        k = kind(half)
        rows.append(("p99 at half the 100 KiB rate", f"{k['latency_ms']['p99']:.1f} ms",
                     f"offered {k['ops_per_s']:.0f} docs/s", "", "≤ 20 ms",
                     verdict(k["latency_ms"]["p99"] <= 20.0)))

    # 2. 10 KiB against the signature ceiling.
    tens = rounds(d, "pair-10KiB-*-congvan.json")
    cv10 = median([kind(r)["ops_per_s"] for r in tens])
    ceil = median([r["ceiling"]["docs_per_s"] for r in tens if "ceiling" in r])
    if cv10 and ceil:
        ratio = cv10 / ceil
        rows.append(("10 KiB, c=64, against the signature ceiling", f"{cv10:.0f} docs/s",
                     f"ceiling {ceil:.0f} docs/s", f"{ratio:.2f}x", "≥ 0.5x", verdict(ratio >= 0.5)))

    # 3. 1 GiB upload.
    ng_up = [r["bytes"] / r["seconds"] / 1e6 for r in rounds(d, "upload-*-nginx.json")]
    cv_up = [kind(r)["mb_per_s"] for r in rounds(d, "upload-*-congvan.json")]
    growth = []
    for p in sorted(glob.glob(os.path.join(d, "upload-*-congvan.rss.json"))):
        r = load(p)
        growth.append((r["hwm_kib"] - r["rss_before_kib"]) / 1024.0)
    if ng_up and cv_up:
        ratio = median(cv_up) / median(ng_up)
        rows.append(("1 GiB upload", f"{median(cv_up):.0f} MB/s", f"curl→nginx {median(ng_up):.0f} MB/s",
                     f"{ratio:.2f}x", "≥ 0.5x", verdict(ratio >= 0.5)))
    if growth:
        rows.append(("server peak RSS growth during the 1 GiB upload", f"{max(growth):.1f} MiB", "", "",
                     "< 64 MiB", verdict(max(growth) < 64)))

    # 4. Sealing and opening 256 MiB.
    seal = rounds(d, "seal-*-congvan.json")
    if seal:
        cv_seal = median([r["seal_mb_s"] for r in seal])
        cv_open = median([r["open_mb_s"] for r in seal])
        for variant in ("encrypt", "sign-encrypt", "encrypt-z0", "sign-encrypt-z0"):
            g = rounds(d, f"seal-*-gpg-{variant}.json")
            if not g:
                continue
            g_seal = median([r["bytes"] / r["seal_s"] / 1e6 for r in g])
            g_open = median([r["bytes"] / r["open_s"] / 1e6 for r in g])
            flags = {"encrypt": "--encrypt", "sign-encrypt": "--sign --encrypt",
                     "encrypt-z0": "-z 0 --encrypt", "sign-encrypt-z0": "-z 0 --sign --encrypt"}[variant]
            rows.append((f"seal 256 MiB (sign + encrypt) vs gpg {flags}",
                         f"{cv_seal:.0f} MB/s", f"gpg {g_seal:.0f} MB/s", f"{cv_seal / g_seal:.2f}x",
                         "≥ 1.0x", verdict(cv_seal >= g_seal)))
            rows.append((f"open 256 MiB (decrypt + verify) vs gpg --decrypt (of {flags})",
                         f"{cv_open:.0f} MB/s", f"gpg {g_open:.0f} MB/s", f"{cv_open / g_open:.2f}x",
                         "≥ 1.0x", verdict(cv_open >= g_open)))

    # 5. Recipients.
    for cls in ("thuong", "mat"):
        try:
            one = kind(load(os.path.join(d, f"recip-{cls}-1.json")))["latency_ms"]["mean"]
            many = kind(load(os.path.join(d, f"recip-{cls}-1000.json")))["latency_ms"]["mean"]
        except (OSError, TypeError):
            continue
        rows.append((f"1,000 recipients vs 1 ({cls}), mean submit latency", f"{many:.1f} ms",
                     f"{one:.1f} ms", f"{many / one:.1f}x", "< 10x", verdict(many / one < 10)))

    # 6. Store growth.
    sizes = sorted({int(m.group(1)) for p in glob.glob(os.path.join(d, "store-*-inbox.json"))
                    if (m := re.search(r"store-(\d+)-inbox", p))})
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        for what in ("inbox", "submit"):
            a = kind(load(os.path.join(d, f"store-{lo}-{what}.json")))["latency_ms"]["p99"]
            b = kind(load(os.path.join(d, f"store-{hi}-{what}.json")))["latency_ms"]["p99"]
            rows.append((f"{what} p99 at {hi:,} stored vs {lo:,}", f"{b:.2f} ms", f"{a:.2f} ms",
                         f"{b / a:.2f}x", "≤ 2x", verdict(b / a <= 2.0)))

    out.append("| measurement | congvan | baseline | ratio | target | |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        out.append("| " + " | ".join(r) + " |")

    # Server CPU per document in the headline runs (what limits them).
    cpu_rows = []
    for size in ("100KiB", "10KiB"):
        per = median([cpu_per_op(d, os.path.basename(p)[:-5])
                      for p in sorted(glob.glob(os.path.join(d, f"pair-{size}-*-congvan.json")))])
        if per:
            cpu_rows.append(f"- {size}: server CPU {per:.2f} ms per document")
    if cpu_rows:
        out.append("\nServer CPU time per document in the headline runs (both cores together):\n")
        out.extend(cpu_rows)
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
