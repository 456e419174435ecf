package record

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Tokenize splits text into the words that the search index holds: runs of Unicode
// letters and digits (with the marks that follow them) of the text in its search
// form (see Normalize), each word once, at most MaxWordsPerRecord, in order of first
// appearance. Queries use the same function, so both sides agree.
func Tokenize(text string) []string {
	text = Normalize(text)
	var words []string
	seen := make(map[string]struct{})
	start := -1
	flush := func(end int) bool {
		if start < 0 {
			return true
		}
		w := text[start:end]
		start = -1
		if _, dup := seen[w]; dup {
			return true
		}
		seen[w] = struct{}{}
		words = append(words, w)
		return len(words) < MaxWordsPerRecord
	}
	for i, r := range text {
		// Combining marks belong to the word they follow: a decomposed "café" is one
		// word, not "caf" and a stray accent.
		if unicode.IsLetter(r) || unicode.IsDigit(r) || (start >= 0 && unicode.Is(unicode.M, r)) {
			if start < 0 {
				start = i
			}
			continue
		}
		if !flush(i) {
			return words
		}
	}
	flush(len(text))
	return words
}

// maxNormalizeRounds bounds Normalize's rounds; one or two suffice for any text seen.
const maxNormalizeRounds = 4

// Normalize returns the search form of text: compatibility-composed (NFKC, so a
// decomposed "café" is the composed one and full-width letters are ASCII) and
// case-folded (so "STRASSE" is "straße"'s "strasse" and "ΟΔΟΣ" is "οδος"), applied
// until the text stops changing, so that the search form of a search form is itself.
// ASCII text only needs lower-casing.
func Normalize(text string) string {
	if isASCII(text) {
		return strings.ToLower(text)
	}
	fold := cases.Fold()
	for range maxNormalizeRounds {
		next := fold.String(norm.NFKC.String(text))
		if next == text {
			break
		}
		text = next
	}
	return text
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
