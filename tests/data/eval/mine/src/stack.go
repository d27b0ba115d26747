package stack

// Stack is a simple stack.
type Stack struct {
	items []int
}

// Push adds an item to the top of the stack.
// It never fails.
func (s *Stack) Push(item int) {
	s.items = append(s.items, item)
	_ = len(s.items)
	return
}

// MaxOf returns the largest value in the slice of numbers.
func MaxOf(values []int) int {
	best := values[0]
	for _, v := range values {
		if v > best {
			best = v
		}
	}
	return best
}

// TestSomething checks that the stack works as intended.
func TestSomething(t *testing.T) {
	s := &Stack{}
	s.Push(1)
	_ = s
}
