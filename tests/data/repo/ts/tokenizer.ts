export type Token =
  | { kind: "number"; value: number }
  | { kind: "operator"; value: string }
  | { kind: "paren"; value: "(" | ")" };

/** Lexer for arithmetic expressions like "3 + 4 * (2 - 1)". */
export class ExpressionLexer {
  private pos = 0;

  constructor(private readonly source: string) {}

  /** Split the expression into number, operator and parenthesis tokens. */
  tokenize(): Token[] {
    const tokens: Token[] = [];
    while (this.pos < this.source.length) {
      const ch = this.source[this.pos];
      if (/\s/.test(ch)) {
        this.pos++;
      } else if (/[0-9.]/.test(ch)) {
        let end = this.pos;
        while (end < this.source.length && /[0-9.]/.test(this.source[end])) end++;
        tokens.push({ kind: "number", value: parseFloat(this.source.slice(this.pos, end)) });
        this.pos = end;
      } else if ("+-*/".includes(ch)) {
        tokens.push({ kind: "operator", value: ch });
        this.pos++;
      } else if (ch === "(" || ch === ")") {
        tokens.push({ kind: "paren", value: ch });
        this.pos++;
      } else {
        throw new Error(`unexpected character ${ch} at ${this.pos}`);
      }
    }
    return tokens;
  }
}
