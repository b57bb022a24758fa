package actors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkStartBurst starts a burst of real containers through the
// supervisor at several admission limits, to choose DefaultMaxStarts. Each
// iteration is one burst of 100; it reports containers/s and the median
// and p99 latency a caller saw (admission wait included).
//
//	go test -tags seccomp -run '^$' -bench StartBurst -benchtime 3x ./actors/
func BenchmarkStartBurst(b *testing.B) {
	const burst = 100
	for _, limit := range []int{1, 2, 4, 8, 16, 64} {
		b.Run(fmt.Sprintf("max=%d", limit), func(b *testing.B) {
			e := newRealEnv(b, Config{MaxStarts: limit})
			bundle := e.bundle("sleep", "sleep", "300")
			var lat []time.Duration
			var total time.Duration
			b.ResetTimer()
			for it := range b.N {
				ctx := context.Background()
				var mu sync.Mutex
				var wg sync.WaitGroup
				t0 := time.Now()
				for i := range burst {
					wg.Add(1)
					go func() {
						defer wg.Done()
						s := time.Now()
						if _, err := e.sup.Start(ctx, fmt.Sprintf("b%d-%d", it, i), bundle); err != nil {
							b.Error(err)
						}
						mu.Lock()
						lat = append(lat, time.Since(s))
						mu.Unlock()
					}()
				}
				wg.Wait()
				total += time.Since(t0)
				b.StopTimer()
				for i := range burst {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_ = e.sup.Delete(ctx, fmt.Sprintf("b%d-%d", it, i), true)
					}()
				}
				wg.Wait()
				b.StartTimer()
			}
			slices.Sort(lat)
			b.ReportMetric(float64(burst*b.N)/total.Seconds(), "containers/s")
			b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
		})
	}
}
