package stats

// pairwiseSum adds x in the order numpy's add.reduce (np.sum) does for a
// contiguous float64 array: blocks of up to 128 elements summed with eight
// interleaved accumulators, larger arrays split in two halves (the first a
// multiple of 8 long) and summed recursively. Summing in numpy's order lets
// sums of probabilities equal scipy's to the last bit.
func pairwiseSum(x []float64) float64 {
	n := len(x)
	switch {
	case n < 8:
		s := 0.0 // numpy starts from -0.0; the sum of these nonnegative terms is the same
		for _, v := range x {
			s += v
		}
		return s
	case n <= 128:
		var r [8]float64
		copy(r[:], x[:8])
		i := 8
		for ; i+8 <= n; i += 8 {
			for j := range r {
				r[j] += x[i+j]
			}
		}
		s := (r[0] + r[1]) + (r[2] + r[3]) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += x[i]
		}
		return s
	}
	n2 := n / 2
	n2 -= n2 % 8
	return pairwiseSum(x[:n2]) + pairwiseSum(x[n2:])
}
