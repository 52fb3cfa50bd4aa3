package breaker

import "testing"

func TestCountWindow_SlotIsModulo(t *testing.T) {
	for _, size := range []int{1, 2, 3, 7, 100, 1000, 1 << 20} {
		w := newCountWindow(size)
		for _, i := range []uint64{0, 1, 2, 99, 100, 101, 12345, 1<<32 - 1} {
			if got, want := w.slot(i), uint64(uint32(i))%uint64(size); got != want {
				t.Fatalf("size %d: slot(%d) = %d, want %d", size, i, got, want)
			}
		}
	}
}
