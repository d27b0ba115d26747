package org.demo;

/** Dense matrices of doubles. */
public final class Matrix {
    private final int rows;
    private final int cols;
    private final double[][] data;

    public Matrix(int rows, int cols) {
        this.rows = rows;
        this.cols = cols;
        this.data = new double[rows][cols];
    }

    /** Multiply this matrix by another: the classic triple loop, O(n^3). */
    public Matrix multiply(Matrix other) {
        if (cols != other.rows) {
            throw new IllegalArgumentException("dimension mismatch");
        }
        Matrix product = new Matrix(rows, other.cols);
        for (int i = 0; i < rows; i++) {
            for (int k = 0; k < cols; k++) {
                double a = data[i][k];
                for (int j = 0; j < other.cols; j++) {
                    product.data[i][j] += a * other.data[k][j];
                }
            }
        }
        return product;
    }

    /** Swap rows and columns. */
    public Matrix transpose() {
        Matrix result = new Matrix(cols, rows);
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                result.data[j][i] = data[i][j];
            }
        }
        return result;
    }
}
