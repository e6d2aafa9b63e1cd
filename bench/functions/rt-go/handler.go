// `runtimes` scenario: the same small JSON answer in every runtime.
package main

func handler(_ map[string]interface{}) interface{} {
	return map[string]interface{}{
		"headers": map[string]string{"content-type": "application/json"},
		"body":    `{"ok":true}`,
	}
}
