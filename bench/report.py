#!/usr/bin/env python3
"""Turns bench/run.sh's runs.csv into the comparison: the median of each figure over the
rounds, ferrotun's ratio to every other implementation and its fraction of the bare-veth
ceiling. Writes results.md, results.csv and results.png next to runs.csv and prints the
table.

Usage: bench/report.py RESULT_DIR   (re-running it on an old result dir is fine)

Only the chart needs matplotlib; without it (and when it cannot be installed) the table
and the CSV are still written.
"""

import csv
import os
import statistics
import subprocess
import sys

REFERENCE = "ferrotun"
CEILING = "veth"

# key in runs.csv, label, unit, True when higher is better
TESTS = [
    ("tcp1", "TCP, 1 stream", "Gbit/s", True),
    ("tcp4", "TCP, 4 streams", "Gbit/s", True),
    ("udp1400", "UDP, 1400-byte packets", "kpps", True),
    ("udp64", "UDP, 64-byte packets", "kpps", True),
    ("rtt_idle", "ping RTT, idle", "ms", False),
    ("rtt_load", "ping RTT, during TCP 1 stream", "ms", False),
    ("cpu_per_gb", "daemon CPU per GB, TCP 1 stream", "CPU s/GB", False),
]

COLOURS = {
    CEILING: "#9e9e9e",
    REFERENCE: "#d9480f",
    "wireguard-go": "#1971c2",
    "boringtun": "#2f9e44",
}
EXTRA_COLOURS = ["#7048e8", "#f08c00", "#0c8599", "#c2255c"]


def number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value else None  # drop NaN


def load_runs(path):
    """Returns (implementations in display order, {impl: {test: [values]}}, rounds)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    order, values, rounds = [], {}, set()
    for row in rows:
        impl = row.get("impl", "")
        if not impl:
            continue
        if impl not in values:
            order.append(impl)
            values[impl] = {key: [] for key, *_ in TESTS}
        rounds.add(row.get("round"))
        for key, *_ in TESTS:
            value = number(row.get(key))
            if value is not None:
                values[impl][key].append(value)
    # The ceiling first, ferrotun next, the peers in the order they were given.
    order.sort(key=lambda name: (name != CEILING, name != REFERENCE))
    return order, values, len(rounds)


def fmt(value):
    if value is None:
        return "–"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def ratio(ref, other, higher_better):
    """How many times better the reference is: > 1 means the reference wins."""
    if ref is None or other is None or ref <= 0 or other <= 0:
        return None
    return ref / other if higher_better else other / ref


def summarise(order, values):
    """{impl: {test: (median, min, max, n)}}; None where there is no value."""
    summary = {}
    for impl in order:
        summary[impl] = {}
        for key, *_ in TESTS:
            vals = values[impl][key]
            summary[impl][key] = (
                (statistics.median(vals), min(vals), max(vals), len(vals)) if vals else None
            )
    return summary


def median_of(summary, impl, key):
    cell = summary.get(impl, {}).get(key)
    return cell[0] if cell else None


def build_table(order, summary, rounds):
    """Header and rows (strings) of the comparison table, plus the same as CSV rows."""
    peers = [i for i in order if i not in (REFERENCE, CEILING)]
    has_ref = REFERENCE in order
    has_ceiling = CEILING in order and has_ref
    header = ["test"] + [f"{i} (ceiling)" if i == CEILING else i for i in order]
    csv_header = ["test", "unit", "better"] + [f"{i}_median" for i in order]
    csv_header += [f"{i}_runs" for i in order]
    if has_ref:
        header += [f"{REFERENCE} vs {p}" for p in peers]
        csv_header += [f"{REFERENCE}_vs_{p}" for p in peers]
    if has_ceiling:
        header.append(f"{REFERENCE} / ceiling")
        csv_header.append(f"{REFERENCE}_fraction_of_ceiling")
    rows, csv_rows = [], []
    for key, label, unit, higher in TESTS:
        row = [f"{label} ({unit}, {'higher' if higher else 'lower'} is better)"]
        csv_row = [key, unit, "higher" if higher else "lower"]
        for impl in order:
            cell = summary[impl][key]
            text = fmt(cell[0]) if cell else "–"
            if cell and cell[3] < rounds:
                text += f" (n={cell[3]})"
            row.append(text)
            csv_row.append("" if not cell else f"{cell[0]:.6g}")
        csv_row += [str(summary[impl][key][3]) if summary[impl][key] else "0" for impl in order]
        ref = median_of(summary, REFERENCE, key)
        if has_ref:
            for peer in peers:
                r = ratio(ref, median_of(summary, peer, key), higher)
                row.append("–" if r is None else f"{r:.2f}×")
                csv_row.append("" if r is None else f"{r:.4f}")
        if has_ceiling:
            # Daemon CPU has no ceiling: the bare veth runs no daemon.
            r = ratio(ref, median_of(summary, CEILING, key), higher)
            row.append("–" if r is None else f"{100 * r:.{0 if r >= 0.1 else 1}f} %")
            csv_row.append("" if r is None else f"{r:.4f}")
        rows.append(row)
        csv_rows.append(csv_row)
    return header, rows, csv_header, csv_rows


def markdown(header, rows):
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def read_versions(out):
    try:
        with open(os.path.join(out, "versions.txt")) as f:
            return f.read().strip()
    except OSError:
        return ""


def import_pyplot():
    """matplotlib.pyplot, installing matplotlib first if it is missing and allowed."""
    try:
        import matplotlib
    except ImportError:
        if os.environ.get("FTBENCH_INSTALL", "1") == "1":
            print("matplotlib is missing: installing it (pip, then apt)", file=sys.stderr)
            attempts = [[sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"]]
            if os.path.realpath(sys.executable).startswith("/usr/bin/"):
                attempts.append(["apt-get", "install", "-y", "-q", "--no-install-recommends", "python3-matplotlib"])
            for cmd in attempts:
                try:
                    if subprocess.run(cmd, stdout=sys.stderr, check=False).returncode == 0:
                        break
                except OSError:
                    pass
        try:
            import matplotlib
        except ImportError:
            return None
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def colour_for(impl, index):
    return COLOURS.get(impl, EXTRA_COLOURS[index % len(EXTRA_COLOURS)])


def chart(path, order, summary, rounds, subtitle):
    plt = import_pyplot()
    if plt is None:
        print(
            "no chart: matplotlib is not installed and could not be installed "
            "(pip install matplotlib, or apt-get install python3-matplotlib), then run "
            f"python3 bench/report.py {os.path.dirname(path)}",
            file=sys.stderr,
        )
        return False
    cols = 4
    rows = (len(TESTS) + 1 + cols - 1) // cols  # one extra panel holds the legend
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows))
    axes = axes.flatten()
    for ax, (key, label, unit, higher) in zip(axes, TESTS):
        impls = [i for i in order if summary[i][key]]
        tunnel_max = max((summary[i][key][2] for i in impls if i != CEILING), default=0)
        # A bare-veth bar many times taller than the tunnels would flatten them: clip it.
        ceiling = summary.get(CEILING, {}).get(key)
        clip = None
        if tunnel_max > 0 and ceiling and ceiling[1] > 3 * tunnel_max:
            clip = tunnel_max * 1.25
        for pos, impl in enumerate(impls):
            med, lo, hi, _n = summary[impl][key]
            clipped = clip is not None and impl == CEILING
            height = clip if clipped else med
            bar = ax.bar(pos, height, color=colour_for(impl, order.index(impl)),
                         hatch="//" if impl == CEILING else None, edgecolor="white")
            if not clipped and hi > lo:
                ax.errorbar(pos, med, yerr=[[med - lo], [hi - med]], color="black",
                            capsize=3, linewidth=1)
            text = fmt(med) + (" ↑" if clipped else "")
            ax.annotate(text, (bar[0].get_x() + bar[0].get_width() / 2, height),
                        ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
        if clip is not None:
            ax.set_ylim(0, clip * 1.12)
        else:
            ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
        ax.set_xticks(range(len(impls)))
        ax.set_xticklabels(impls, rotation=20, fontsize=8)
        ax.set_title(f"{label}\n{unit}, {'higher' if higher else 'lower'} is better", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    for ax in axes[len(TESTS):]:
        ax.axis("off")
    legend_ax = axes[len(TESTS)]
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=colour_for(i, n), hatch="//" if i == CEILING else None)
        for n, i in enumerate(order)
    ]
    legend_ax.legend(handles, [f"{i} (no tunnel)" if i == CEILING else i for i in order],
                     loc="center", frameon=False)
    legend_ax.text(0.5, 0.02, f"median of {rounds} run(s); bars: min–max\n↑ = off scale",
                   ha="center", va="bottom", fontsize=8, transform=legend_ax.transAxes)
    tunnels = " vs ".join(i for i in order if i != CEILING)
    fig.suptitle(f"{tunnels}: two network namespaces, one machine\n{subtitle}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = sys.argv[1]
    runs_csv = os.path.join(out, "runs.csv")
    if not os.path.exists(runs_csv):
        print(f"{runs_csv} does not exist: run bench/run.sh first", file=sys.stderr)
        return 1
    order, values, rounds = load_runs(runs_csv)
    if not order:
        print(f"{runs_csv} holds no runs", file=sys.stderr)
        return 1
    summary = summarise(order, values)
    header, rows, csv_header, csv_rows = build_table(order, summary, rounds)
    table = markdown(header, rows)

    versions = read_versions(out)
    settings = next((l for l in versions.splitlines() if l.startswith("settings:")), "")
    load = next((l for l in versions.splitlines() if l.startswith("load average")), "")
    notes = [
        f"Median of {rounds} run(s) per figure; {settings.removeprefix('settings: ')}.",
        f"Ratios are {REFERENCE}'s advantage: > 1 means {REFERENCE} is better "
        "(for RTT and CPU per GB, where lower is better, the ratio is inverted).",
        "UDP packet sizes are IP packet sizes inside the tunnel; kpps = thousands of packets "
        "per second received.",
    ]
    if CEILING in order and REFERENCE in order:
        notes.insert(2, f"The ceiling is the bare veth pair without a tunnel; the last column "
                        f"is the fraction of it {REFERENCE} reaches (for RTT: ceiling RTT / {REFERENCE} RTT).")
    if any(cell and cell[3] < rounds for impl in order for cell in summary[impl].values()):
        notes.append("(n=K): only K runs produced this figure; the others failed (see runs.csv).")
    if load:
        notes.append(load.capitalize() + ".")
    body = table + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"

    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(body)
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(csv_header)
        writer.writerows(csv_rows)
    png = os.path.join(out, "results.png")
    have_chart = chart(png, order, summary, rounds, settings.removeprefix("settings: "))

    print()
    print(body)
    written = ["results.md", "results.csv"] + (["results.png"] if have_chart else []) + ["runs.csv"]
    print(f"written to {out}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
