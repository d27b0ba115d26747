package tiny

import "strings"

// Reverse returns the string reversed rune by rune, so that
// multi-byte characters survive.
func Reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// Joiner joins words with a separator.
type Joiner struct{ Sep string }

// JoinWords joins the non-empty words with the joiner's separator.
func (j *Joiner) JoinWords(words []string) string {
	kept := make([]string, 0, len(words))
	for _, w := range words {
		if w != "" {
			kept = append(kept, w)
		}
	}
	return strings.Join(kept, j.Sep)
}
