package demo;

public class Queue {
    private int size;

    /**
     * Return the number of elements currently in the queue.
     *
     * @return the size
     */
    public int count() {
        int result = size;
        System.out.println(result);
        return result;
    }
}
