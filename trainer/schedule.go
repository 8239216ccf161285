package trainer

// LinearSchedule is transformers' get_linear_schedule_with_warmup (fit()'s
// "WarmupLinear"): the learning rate rises linearly from 0 over Warmup
// steps, then falls linearly to 0 at Total. Step s (0-based) is the s-th
// optimizer update, so the very first update uses a learning rate of 0
// whenever there is a warmup, exactly as with LambdaLR.
type LinearSchedule struct {
	Base          float64
	Warmup, Total int
}

// LR returns the learning rate for optimizer step s.
func (l LinearSchedule) LR(s int) float64 {
	if s < l.Warmup {
		return l.Base * float64(s) / float64(max(1, l.Warmup))
	}
	return l.Base * max(0, float64(l.Total-s)/float64(max(1, l.Total-l.Warmup)))
}
