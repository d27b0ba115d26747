"""Small, realistic sources in each required language: a type with methods, or functions."""

from __future__ import annotations

SNIPPETS: dict[str, tuple[str, str]] = {
    "python": ("session.py", '''"""HTTP sessions."""

import time


class Session:
    """Keeps connections alive."""

    def __init__(self, retries: int = 3) -> None:
        self.retries = retries

    @property
    def closed(self) -> bool:
        return False

    def send(self, request):
        for attempt in range(self.retries):
            time.sleep(2 ** attempt)
        return request


def connect(url):
    return Session()
'''),
    "javascript": ("router.js", '''import { parse } from "./url.js";

export class Router {
  constructor(routes) {
    this.routes = routes;
  }

  route(path) {
    return this.routes[parse(path)];
  }
}

export const handler = (req) => {
  return new Router({}).route(req.url);
};

function listen(port) {
  return port;
}
'''),
    "typescript": ("cache.ts", '''export interface Store {
  get(key: string): string | undefined;
}

export class LruCache implements Store {
  private items = new Map<string, string>();

  get(key: string): string | undefined {
    return this.items.get(key);
  }

  set(key: string, value: string): void {
    this.items.set(key, value);
  }
}

export function makeCache(): LruCache {
  return new LruCache();
}
'''),
    "tsx": ("Button.tsx", '''import React from "react";

type Props = { label: string };

export class Button extends React.Component<Props> {
  render() {
    return <button>{this.props.label}</button>;
  }
}

export function Label({ label }: Props) {
  return <span>{label}</span>;
}
'''),
    "go": ("server.go", '''package http

import "net"

type Server struct {
	Addr string
}

func (s *Server) Serve(l net.Listener) error {
	for {
		conn, err := l.Accept()
		if err != nil {
			return err
		}
		_ = conn
	}
}

func NewServer(addr string) *Server {
	return &Server{Addr: addr}
}
'''),
    "rust": ("router.rs", '''use std::collections::HashMap;

pub struct Router {
    routes: HashMap<String, usize>,
}

impl Router {
    pub fn new() -> Self {
        Router { routes: HashMap::new() }
    }

    pub fn route(&self, path: &str) -> Option<usize> {
        self.routes.get(path).copied()
    }
}

pub trait Handler {
    fn handle(&self);
}

fn main() {
    let r = Router::new();
    println!("{:?}", r.route("/"));
}
'''),
    "java": ("Account.java", '''package bank;

import java.util.List;

public class Account {
    private long balance;

    public Account(long balance) {
        this.balance = balance;
    }

    public void deposit(long amount) {
        balance += amount;
    }

    public long getBalance() {
        return balance;
    }
}
'''),
    "c": ("buffer.c", '''#include <stdlib.h>

struct buffer {
    char *data;
    size_t len;
};

static int grow(struct buffer *b, size_t n) {
    b->data = realloc(b->data, n);
    return b->data != NULL;
}

void buffer_free(struct buffer *b) {
    free(b->data);
}
'''),
    "cpp": ("widget.cpp", '''#include <string>

namespace ui {

class Widget {
 public:
  void draw() const {
    render(name_);
  }

 private:
  std::string name_;
};

int Widget::area(int w, int h) {
  return w * h;
}

}  // namespace ui
'''),
    "csharp": ("Inventory.cs", '''using System.Collections.Generic;

namespace Shop
{
    public class Inventory
    {
        private readonly List<string> items = new();

        public void Add(string item)
        {
            items.Add(item);
        }

        public int Count()
        {
            return items.Count;
        }
    }
}
'''),
    "ruby": ("stack.rb", '''module Collections
  class Stack
    def initialize
      @items = []
    end

    def push(item)
      @items.push(item)
    end

    def pop
      @items.pop
    end
  end
end
'''),
    "php": ("User.php", '''<?php

namespace App\\Models;

class User
{
    private string $name;

    public function __construct(string $name)
    {
        $this->name = $name;
    }

    public function greet(): string
    {
        return "Hello " . $this->name;
    }
}
'''),
    "kotlin": ("Queue.kt", '''package jobs

class JobQueue(private val capacity: Int) {
    private val jobs = ArrayDeque<String>()

    fun enqueue(job: String): Boolean {
        if (jobs.size >= capacity) return false
        jobs.addLast(job)
        return true
    }

    fun dequeue(): String? = jobs.removeFirstOrNull()
}

fun main() {
    println(JobQueue(2).enqueue("a"))
}
'''),
    "scala": ("Shapes.scala", '''package geometry

trait Shape {
  def area: Double
}

class Circle(r: Double) extends Shape {
  def area: Double = math.Pi * r * r

  def scale(k: Double): Circle = {
    new Circle(r * k)
  }
}

object Shapes {
  def unit(): Circle = new Circle(1.0)
}
'''),
    "swift": ("Counter.swift", '''import Foundation

class Counter {
    var count = 0

    init(start: Int) {
        count = start
    }

    func increment() {
        count += 1
    }

    func reset() {
        count = 0
    }
}

func makeCounter() -> Counter {
    return Counter(start: 0)
}
'''),
    "bash": ("deploy.sh", '''#!/usr/bin/env bash
set -euo pipefail

log() {
  echo "[deploy] $*"
}

function deploy {
  log "deploying $1"
  rsync -a build/ "$1":/srv/app
}

deploy "$@"
'''),
    "lua": ("account.lua", '''local Account = {}
Account.__index = Account

function Account.new(balance)
  return setmetatable({balance = balance}, Account)
end

function Account:deposit(v)
  self.balance = self.balance + v
end

local function helper(x)
  return x * 2
end

return Account
'''),
}

# For each language: (kind, symbol) pairs that must appear among its chunks when every
# definition gets a chunk of its own (a small budget).
EXPECTED: dict[str, list[tuple[str, str]]] = {
    "python": [("class", "Session"), ("method", "Session.send"),
               ("method", "Session.closed"), ("function", "connect")],
    "javascript": [("method", "Router.route"), ("method", "Router.constructor"),
                   ("function", "handler"), ("function", "listen")],
    "typescript": [("interface", "Store"), ("method", "LruCache.get"),
                   ("method", "LruCache.set"), ("function", "makeCache")],
    "tsx": [("method", "Button.render"), ("function", "Label")],
    "go": [("struct", "Server"), ("method", "Server.Serve"), ("function", "NewServer")],
    "rust": [("struct", "Router"), ("method", "Router.new"), ("method", "Router.route"),
             ("trait", "Handler"), ("function", "main")],
    "java": [("constructor", "Account.Account"), ("method", "Account.deposit"),
             ("method", "Account.getBalance")],
    "c": [("struct", "buffer"), ("function", "grow"), ("function", "buffer_free")],
    "cpp": [("method", "ui.Widget.draw"), ("function", "ui.Widget.area")],
    "csharp": [("method", "Shop.Inventory.Add"), ("method", "Shop.Inventory.Count")],
    "ruby": [("method", "Collections.Stack.push"), ("method", "Collections.Stack.pop")],
    "php": [("method", "User.greet"), ("method", "User.__construct"),
            ("namespace", "App.Models")],
    "kotlin": [("method", "JobQueue.enqueue"), ("method", "JobQueue.dequeue"),
               ("function", "main")],
    "scala": [("method", "Circle.scale"), ("method", "Shapes.unit"), ("trait", "Shape")],
    "swift": [("method", "Counter.increment"), ("method", "Counter.reset"),
              ("constructor", "Counter.init"), ("function", "makeCounter")],
    "bash": [("function", "log"), ("function", "deploy")],
    "lua": [("function", "Account.new"), ("function", "Account.deposit"),
            ("function", "helper")],
}
