package bench

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

// Targets the benchmark reports against (docs/benchmarks.md "Targets vs
// results").
const (
	TargetRatio     = 0.5
	TargetP99       = 10 * time.Millisecond
	TargetE2EP99    = 50 * time.Millisecond
	TargetRSS       = 100 << 20
	TargetRedisByte = 200
	// Against the minimal durable handler (MinimalHandler), same run:
	// payhook's max req/s at least this fraction of its (median over
	// rounds), and its p99 at Conns connections at most this multiple.
	TargetToMinimal    = 0.9
	TargetP99ToMinimal = 1.5
)

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Print writes the report as a table, then the details behind it.
func (r *Report) Print(w io.Writer) {
	r.printHeader(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tpayhook\tbaseline\tratio\ttarget\t")
	r.printThroughput(tw)
	r.printLatency(tw)
	r.printResources(tw)
	tw.Flush()
	fmt.Fprintln(w)
	r.printDetails(w)
}

// printHeader writes when and where the run happened and the traffic mix.
func (r *Report) printHeader(w io.Writer) {
	fmt.Fprintf(w, "payhook benchmark, %s, host %s, %d CPUs\n", r.Started.Format("2006-01-02 15:04 MST"), r.Host, r.CPUs)
	fmt.Fprintln(w, "Load generator, payhook and the baseline share this machine; on a shared box absolute numbers are noisy — compare the ratios.")
	var mix []string
	for _, t := range r.Mix {
		mix = append(mix, fmt.Sprintf("%s/%s %d%%", t.Provider, t.Kind, t.Weight))
	}
	fmt.Fprintf(w, "Mix: %s", strings.Join(mix, ", "))
	if len(r.Excluded) > 0 {
		fmt.Fprintf(w, " (not registered in ingress yet, left out: %s)", strings.Join(r.Excluded, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
}

// printThroughput writes the max-throughput rows: payhook against the
// baseline, the straightforward and the minimal durable handlers.
func (r *Report) printThroughput(tw io.Writer) {
	pm, bm := r.PayhookMax.Throughput(), r.BaselineMax.Throughput()
	fmt.Fprintf(tw, "max req/s (closed loop)\t%.0f\t%.0f\t%s\t≥ %.2f× %s\t\n", pm, bm, ratio(pm, bm), TargetRatio, verdict(bm > 0 && pm/bm >= TargetRatio))
	if line, ok := roundsLine(r.RoundRatios); ok {
		fmt.Fprint(tw, line)
	}
	if nm := r.NaiveMax.Throughput(); nm > 0 {
		fmt.Fprintf(tw, "straightforward handler max req/s\t%.0f\t%.0f\t%s\tpayhook %s of it\t\n", nm, bm, ratio(nm, bm), ratio(pm, nm))
		if len(r.NaiveRatios) > 1 {
			strs := make([]string, len(r.NaiveRatios))
			for i, v := range r.NaiveRatios {
				strs[i] = fmt.Sprintf("%.2f", v)
			}
			fmt.Fprintf(tw, "straightforward ratio, %d rounds\t%s\t\t%.2f× median\t\t\n", len(strs), strings.Join(strs, " "), median(r.NaiveRatios))
		}
	}
	if mm := r.MinimalMax.Throughput(); mm > 0 {
		fmt.Fprintf(tw, "minimal durable handler max req/s\t%.0f\t%.0f\t%s\tpayhook %s of it\t\n", mm, bm, ratio(mm, bm), ratio(pm, mm))
		fmt.Fprint(tw, seriesLine("minimal ratio", r.MinimalRatios, ""))
		fmt.Fprint(tw, seriesLine("payhook / minimal max req/s", r.PayhookToMinimal,
			fmt.Sprintf("≥ %.2f× %s", TargetToMinimal, verdict(median(r.PayhookToMinimal) >= TargetToMinimal))))
		if sm := r.MinimalSignedMax.Throughput(); sm > 0 {
			fmt.Fprintf(tw, "minimal handler + signing max req/s\t%.0f\t%.0f\t%s\tpayhook %s of it\t\n", sm, bm, ratio(sm, bm), ratio(pm, sm))
			fmt.Fprint(tw, seriesLine("payhook / minimal+signing max req/s", r.PayhookToSigned, ""))
		}
		if fm := r.FloorMax.Throughput(); fm > 0 {
			fmt.Fprintf(tw, "contract floor (minimal + signing + raw) max req/s\t%.0f\t%.0f\t%s\tpayhook %s of it\t\n", fm, bm, ratio(fm, bm), ratio(pm, fm))
			fmt.Fprint(tw, seriesLine("payhook / contract floor max req/s", r.PayhookToFloor, ""))
		}
		fmt.Fprint(tw, seriesLine(fmt.Sprintf("payhook / minimal p99 @ %d conns", r.Conns), r.P99ToMinimal,
			fmt.Sprintf("≤ %.2f× %s", TargetP99ToMinimal, verdict(median(r.P99ToMinimal) <= TargetP99ToMinimal))))
	}
}

// printLatency writes the open-loop latency rows, ingress and end to end.
func (r *Report) printLatency(tw io.Writer) {
	rate := fmt.Sprintf(" @ %.0f/s", r.Rate)
	pl, bl := r.PayhookLat.Latency, r.BaselineLat.Latency
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p99", 0.99}, {"p99.9", 0.999}} {
		target := ""
		if q.q == 0.99 {
			target = fmt.Sprintf("< %s %s", ms(TargetP99), verdict(pl.Quantile(q.q) < TargetP99))
		}
		fmt.Fprintf(tw, "ingress %s%s (open loop)\t%s\t%s\t%s\t%s\t\n", q.name, rate, ms(pl.Quantile(q.q)), ms(bl.Quantile(q.q)),
			ratio(float64(pl.Quantile(q.q)), float64(bl.Quantile(q.q))), target)
	}
	if r.Subscribers > 0 && r.E2ELat != nil {
		fmt.Fprintf(tw, "e2e p50%s (%d subscribers)\t%s\t\t\t\t\n", rate, r.Subscribers, ms(r.E2ELat.Quantile(0.5)))
		fmt.Fprintf(tw, "e2e p99%s\t%s\t\t\t< %s %s\t\n", rate, ms(r.E2ELat.Quantile(0.99)), ms(TargetE2EP99), verdict(r.E2ELat.Quantile(0.99) < TargetE2EP99 && r.E2EMissing == 0))
		if r.E2ESteady != nil {
			fmt.Fprintf(tw, "e2e p50 / p99 @ 1000/s\t%s / %s\t\t\t\t\n", ms(r.E2ESteady.Quantile(0.5)), ms(r.E2ESteady.Quantile(0.99)))
		}
		fmt.Fprintf(tw, "dispatcher backlog at max load\tpeak %d msgs, drained %s after\t\t\tbounded\t\n", r.MaxLag, r.CatchUp.Round(100*time.Millisecond))
	}
}

// printResources writes the memory and allocation rows.
func (r *Report) printResources(tw io.Writer) {
	for _, p := range r.Procs {
		if p.Name == "baseline" || p.Name == "naive" || p.Name == "minimal" || p.Name == "minimal-signed" || p.Name == "floor" {
			continue
		}
		t := ""
		if p.Name == "ingress" || p.Name == "dispatcher" {
			t = fmt.Sprintf("< 100 MiB %s", verdict(p.RSSAt1k < TargetRSS))
		}
		fmt.Fprintf(tw, "RSS %s @ 1000/s (peak over run)\t%s (%s)\t\t\t%s\t\n", p.Name, mib(p.RSSAt1k), mib(p.PeakTotal), t)
	}
	fmt.Fprintf(tw, "Redis bytes per tracked event (INFO delta)\t%.0f\t\t\t< %d %s\t\n", r.RedisPerEvent, TargetRedisByte, verdict(r.RedisPerEvent > 0 && r.RedisPerEvent < TargetRedisByte))
	fmt.Fprintf(tw, "Redis MEMORY USAGE per key (sampled)\t%.0f\t\t\t\t\n", r.RedisUsageSample)
	fmt.Fprintf(tw, "allocs per callback (ingress process)\t%.0f (%.1f KiB)\t\t\t\t\n", r.AllocsPerCB, r.AllocBytesPerCB/1024)
	if r.DispAllocsPerEvent > 0 {
		fmt.Fprintf(tw, "allocs per event (dispatcher, %d deliveries)\t%.0f\t\t\t\t\n", r.Subscribers, r.DispAllocsPerEvent)
	}
}

// printDetails writes every phase's raw result and the measurements behind
// the table.
func (r *Report) printDetails(w io.Writer) {
	fmt.Fprintln(w, "Details")
	line := func(name string, res Result) {
		fmt.Fprintf(w, "  %-22s sent %d ok %d errors %d late %d in %s (%.0f req/s); latency p50 %s p99 %s p99.9 %s max %s",
			name, res.Sent, res.OK, res.Errors, res.Late, res.Elapsed.Round(time.Millisecond), res.Throughput(),
			ms(res.Latency.Quantile(.5)), ms(res.Latency.Quantile(.99)), ms(res.Latency.Quantile(.999)), ms(res.Latency.Max()))
		if res.FirstErr != "" {
			fmt.Fprintf(w, "; first error: %s", res.FirstErr)
		}
		fmt.Fprintln(w)
	}
	line("baseline max", r.BaselineMax)
	line("straightforward max", r.NaiveMax)
	line("minimal max", r.MinimalMax)
	line("minimal+signing max", r.MinimalSignedMax)
	line("contract floor max", r.FloorMax)
	line("payhook max", r.PayhookMax)
	line("payhook open", r.PayhookLat)
	line("baseline open", r.BaselineLat)
	line("payhook 1000/s", r.Steady)
	if r.E2ELat != nil && r.E2ELat.Count() > 0 {
		fmt.Fprintf(w, "  e2e deliveries at %.0f/s: %d recorded, %d missing after 30 s; p99.9 %s max %s\n",
			r.Rate, r.E2ELat.Count(), r.E2EMissing, ms(r.E2ELat.Quantile(.999)), ms(r.E2ELat.Max()))
	}
	fmt.Fprintf(w, "  CPU per callback at %.0f/s (µs):", r.Rate)
	for _, p := range r.Procs {
		if p.Name != "baseline" {
			fmt.Fprintf(w, " %s %.0f", p.Name, float64(p.CPUPerReq)/float64(time.Microsecond))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "  cores used during payhook max:")
	for _, p := range r.Procs {
		fmt.Fprintf(w, " %s %.2f", p.Name, p.CPUMaxLoad)
	}
	fmt.Fprintln(w, " (the load generator uses the rest)")
	if r.NaiveMax.Throughput() > 0 {
		fmt.Fprintf(w, "  cores used by the straightforward handler during its max: %.2f (%.0f µs per request)\n",
			r.NaiveCPUMaxLoad, r.NaiveCPUMaxLoad*1e6/r.NaiveMax.Throughput())
	}
	if mm := r.MinimalMax.Throughput(); mm > 0 {
		fmt.Fprintf(w, "  cores used by the minimal durable handler during its max: %.2f (%.0f µs per request), NATS %.2f (%.0f µs per request)\n",
			r.MinimalCPUMaxLoad, r.MinimalCPUMaxLoad*1e6/mm, r.MinimalNATSMaxLoad, r.MinimalNATSMaxLoad*1e6/mm)
	}
	if fm := r.FloorMax.Throughput(); fm > 0 {
		fmt.Fprintf(w, "  cores used by the contract floor during its max: %.2f (%.0f µs per request), NATS %.2f (%.0f µs per request)\n",
			r.FloorCPUMaxLoad, r.FloorCPUMaxLoad*1e6/fm, r.FloorNATSMaxLoad, r.FloorNATSMaxLoad*1e6/fm)
	}
	if pm := r.PayhookMax.Throughput(); pm > 0 {
		fmt.Fprint(w, "  µs of CPU per callback during payhook's max:")
		for _, p := range r.Procs {
			if p.CPUMaxLoad > 0 {
				fmt.Fprintf(w, " %s %.0f", p.Name, p.CPUMaxLoad*1e6/pm)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  baseline CPU per request at %.0f/s: %.0f µs\n", r.Rate, float64(r.BaselineCPUPerReq)/float64(time.Microsecond))
	fmt.Fprintf(w, "  load average (1/5/15 min) at start %s, at end %s on %d CPUs\n", r.LoadStart, r.LoadEnd, r.CPUs)
	fmt.Fprintf(w, "  ingress at %.0f/s: mean handler time %s, of which JetStream publish until PubAck %s (from ingress /metrics)\n", r.Rate, ms(r.HandlerMean), ms(r.PublishMean))
	fmt.Fprintf(w, "  events stored %d, Redis keys added %d, Redis commands per callback %.2f\n", r.EventsStored, r.RedisKeys, r.RedisCmdsPerCB)
	if r.Profile != "" {
		fmt.Fprintf(w, "  ingress CPU profile: %s (go tool pprof -top %s)\n", r.Profile, r.Profile)
	}
}

// roundsLine is the report row for several max-throughput rounds: every
// ratio in run order and their median (false for a single round).
func roundsLine(ratios []float64) (string, bool) {
	if len(ratios) < 2 {
		return "", false
	}
	strs := make([]string, len(ratios))
	for i, v := range ratios {
		strs[i] = fmt.Sprintf("%.2f", v)
	}
	rs := ratios
	med := median(ratios)
	return fmt.Sprintf("max req/s ratio, %d rounds\t%s\t\t%.2f× median\t≥ %.2f× %s\t\n",
		len(rs), strings.Join(strs, " "), med, TargetRatio, verdict(med >= TargetRatio)), true
}

// seriesLine is a report row for a per-round series: every value in run
// order and, with more than one, their median.
func seriesLine(name string, v []float64, target string) string {
	strs := make([]string, len(v))
	for i, x := range v {
		strs[i] = fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%s, %d rounds\t%s\t\t%.2f× median\t%s\t\n", name, len(v), strings.Join(strs, " "), median(v), target)
}

func median(v []float64) float64 {
	rs := slices.Clone(v)
	slices.Sort(rs)
	if len(rs) == 0 {
		return 0
	}
	if len(rs)%2 == 0 {
		return (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
	}
	return rs[len(rs)/2]
}
